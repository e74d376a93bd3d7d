package generator

import (
	"sort"
	"strings"
)

// TreeLines draws the lineage of the environments as a tree, roots first,
// children sorted by branch name:
//
//	main
//	└─ staging
//	   └─ feature_1
//
// An environment whose parent is missing is drawn as a root, marked.
func TreeLines(envs []*Environment, label func(*Environment) string) []string {
	byName := map[string]*Environment{}
	children := map[string][]*Environment{}
	for _, e := range envs {
		byName[e.Name] = e
	}
	var roots []*Environment
	for _, e := range envs {
		if _, ok := byName[e.ParentEnv]; e.ParentEnv == "" || !ok {
			roots = append(roots, e)
			continue
		}
		children[e.ParentEnv] = append(children[e.ParentEnv], e)
	}
	less := func(l []*Environment) {
		sort.Slice(l, func(i, j int) bool { return l[i].Branch < l[j].Branch })
	}
	less(roots)
	var lines []string
	var walk func(e *Environment, prefix string, last, root bool, seen map[string]bool)
	walk = func(e *Environment, prefix string, last, root bool, seen map[string]bool) {
		if seen[e.Name] {
			return
		}
		seen[e.Name] = true
		text := label(e)
		if root && e.ParentEnv != "" {
			text += "  (parent " + e.Parent + " is missing)"
		}
		next := prefix
		switch {
		case root:
			lines = append(lines, text)
		case last:
			lines = append(lines, prefix+"└─ "+text)
			next = prefix + "   "
		default:
			lines = append(lines, prefix+"├─ "+text)
			next = prefix + "│  "
		}
		kids := children[e.Name]
		less(kids)
		for i, k := range kids {
			walk(k, next, i == len(kids)-1, false, seen)
		}
	}
	seen := map[string]bool{}
	for _, r := range roots {
		walk(r, "", true, true, seen)
	}
	return lines
}

// LineageString is "main → staging → feature_1".
func LineageString(chain []*Environment) string {
	names := make([]string, len(chain))
	for i, e := range chain {
		names[i] = e.Branch
	}
	return strings.Join(names, " → ")
}
