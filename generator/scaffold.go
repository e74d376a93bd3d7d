package generator

import (
	"bytes"
	"fmt"
	"io/fs"

	yamlv3 "gopkg.in/yaml.v3"

	"github.com/offshoot-dev/offshoot/templates"
)

// InitOptions override the defaults of the scaffolded offshoot.yaml.
type InitOptions struct {
	App, Image, Hostname, Root string
	Protected                  []string // nil keeps the template's list
	DestinationPath            string
	EndpointURL                string
}

// Scaffold returns the files of a new environments repo: the embedded
// templates, with offshoot.yaml edited as a YAML tree (comments kept) and
// validated like any config. Extra files (e.g. the Argo CD manifests) are
// added by the caller.
func Scaffold(o InitOptions) (map[string][]byte, error) {
	files := map[string][]byte{}
	src := templates.EnvRepo()
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files[p], err = fs.ReadFile(src, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(files[ConfigFile], &doc); err != nil {
		return nil, fmt.Errorf("embedded %s: %w", ConfigFile, err)
	}
	set := func(value string, keys ...string) error {
		if value == "" {
			return nil
		}
		n, err := lookup(doc.Content[0], keys...)
		if err != nil {
			return err
		}
		n.Kind, n.Tag, n.Value, n.Style = yamlv3.ScalarNode, "!!str", value, 0
		return nil
	}
	for _, s := range []struct {
		v    string
		keys []string
	}{
		{o.App, []string{"app", "name"}},
		{o.Image, []string{"app", "image"}},
		{o.Hostname, []string{"app", "hostname"}},
		{o.Root, []string{"branches", "root"}},
		{o.DestinationPath, []string{"database", "objectStore", "destinationPath"}},
	} {
		if err := set(s.v, s.keys...); err != nil {
			return nil, err
		}
	}
	if o.EndpointURL != "" {
		osn, err := lookup(doc.Content[0], "database", "objectStore")
		if err != nil {
			return nil, err
		}
		osn.Content = append(osn.Content,
			&yamlv3.Node{Kind: yamlv3.ScalarNode, Tag: "!!str", Value: "endpointURL"},
			&yamlv3.Node{Kind: yamlv3.ScalarNode, Tag: "!!str", Value: o.EndpointURL})
	}
	if o.Protected != nil {
		n, err := lookup(doc.Content[0], "branches", "protected")
		if err != nil {
			return nil, err
		}
		n.Kind, n.Tag, n.Content = yamlv3.SequenceNode, "!!seq", nil
		for _, p := range o.Protected {
			n.Content = append(n.Content, &yamlv3.Node{Kind: yamlv3.ScalarNode, Tag: "!!str", Value: p})
		}
	}
	var buf bytes.Buffer
	enc := yamlv3.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	files[ConfigFile] = buf.Bytes()
	if _, err := ParseConfig(files[ConfigFile]); err != nil {
		return nil, err
	}
	return files, nil
}

func lookup(n *yamlv3.Node, keys ...string) (*yamlv3.Node, error) {
	for _, k := range keys {
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				n, found = n.Content[i+1], true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("embedded %s has no key %q", ConfigFile, k)
		}
	}
	return n, nil
}
