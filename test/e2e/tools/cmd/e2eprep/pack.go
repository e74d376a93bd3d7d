package main

// Images without a registry: a root filesystem directory becomes a
// docker-archive tarball (one layer: GNU tar's stream of the directory, with
// numeric owners and xattrs) through go-containerregistry, which `ctr -n
// k8s.io images import` loads under the upstream name.

import (
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type imageConfig struct {
	User, WorkingDir string
	Env, Entrypoint  []string
	Cmd              []string
}

// packImage writes rootfs as image tag into out (a docker-archive).
func packImage(rootfs, tag, out string, cfg imageConfig) error {
	open := func() (io.ReadCloser, error) {
		c := exec.Command("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", rootfs, "-cf", "-", ".")
		c.Stderr = os.Stderr
		r, err := c.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := c.Start(); err != nil {
			return nil, err
		}
		return &waitCloser{r, c}, nil
	}
	layer, err := tarball.LayerFromOpener(open, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
	if err != nil {
		return err
	}
	now := time.Now()
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: now}, CreatedBy: "offshoot e2e", Comment: rootfs}})
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", "amd64", v1.Time{Time: now}
	cf.Config.Env, cf.Config.User, cf.Config.WorkingDir = cfg.Env, cfg.User, cfg.WorkingDir
	cf.Config.Entrypoint, cf.Config.Cmd = cfg.Entrypoint, cfg.Cmd
	if cf.Config.WorkingDir == "" {
		cf.Config.WorkingDir = "/"
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}

type waitCloser struct {
	io.ReadCloser
	c *exec.Cmd
}

func (w *waitCloser) Close() error {
	_, _ = io.Copy(io.Discard, w.ReadCloser)
	err := w.ReadCloser.Close()
	if werr := w.c.Wait(); werr != nil {
		return werr
	}
	return err
}
