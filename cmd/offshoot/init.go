package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/gitrepo"
)

type initOptions struct {
	f        *factory
	location string
	gen      generator.InitOptions
}

func newInitCmd(f *factory) *cobra.Command {
	o := &initOptions{f: f}
	cmd := &cobra.Command{
		Use:   "init [DIR|URL]",
		Short: "Scaffold an environments repo: offshoot.yaml and the app base",
		Long: `Scaffold an environments repo and commit it: offshoot.yaml (every field
commented) and the app base (Deployment, Service, Ingress). A local DIR that
does not exist or is empty becomes a new git repository; a URL must name an
empty remote repository. Without an argument, --env-repo is used.`,
		Example: `  offshoot init ./shop-environments --app shop --image ghcr.io/acme/shop
  offshoot init http://git.example.com/shop-environments.git --root-branch master`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.location = f.EnvRepo
			if len(a) == 1 {
				o.location = a[0]
			}
			return runInit(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.gen.App, "app", "", "application name (default shop)")
	fl.StringVar(&o.gen.Image, "image", "", "image repository of the app, without tag")
	fl.StringVar(&o.gen.Hostname, "hostname", "", "preview hostname pattern with {env}")
	fl.StringVar(&o.gen.Root, "root-branch", "", "the root branch (default main)")
	fl.StringSliceVar(&o.gen.Protected, "protected", nil, "protected branches (default staging)")
	fl.StringVar(&o.gen.DestinationPath, "backup-path", "", "object store destination path for database backups")
	fl.StringVar(&o.gen.EndpointURL, "backup-endpoint", "", "object store endpoint URL (e.g. MinIO)")
	return cmd
}

func runInit(ctx context.Context, o *initOptions) error {
	if o.location == "" {
		return &flagError{fmt.Errorf("init needs a directory or URL (argument, --env-repo or OFFSHOOT_ENV_REPO)")}
	}
	files, err := generator.Scaffold(o.gen)
	if err != nil {
		return err
	}
	if err := gitrepo.PrepareLocal(o.location); err != nil {
		return err
	}
	repo, err := gitrepo.Open(ctx, o.f.repoOptions(o.location))
	if err != nil {
		return err
	}
	out, err := (&engine.Engine{Repo: repo, Now: o.f.now}).Init(ctx, files)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.f.Out, "initialised %s (commit %s)\n", o.location, short(out.Commit))
	fmt.Fprintf(o.f.Out, "next: edit offshoot.yaml and base/app/, then: offshoot sync <root-branch> --sha <commit> --env-repo %s\n", o.location)
	if cfg, err := generator.ParseConfig(files[generator.ConfigFile]); err == nil {
		if how := cfg.ReplicatedSourceInstructions(); how != "" {
			fmt.Fprintf(o.f.Out, "\n%s", how)
		}
	}
	return nil
}

var short = generator.ShortSHA
