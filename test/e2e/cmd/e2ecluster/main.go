// Command e2ecluster is the e2e harness's one multi-call binary: a
// Kubernetes API server, controller manager and scheduler, a kubelet and
// kube-proxy (the real node of TestNode), kubectl, and the Argo CD
// components, all built from Go modules (no images, no downloads of
// binaries). The role is $ARGOCD_BINARY_NAME, else the base name of argv[0]
// (the harness links each role's name to this binary), else argv[1].
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubeapiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kubeproxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubescheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	appcontroller "github.com/argoproj/argo-cd/v2/cmd/argocd-application-controller/commands"
	applicationset "github.com/argoproj/argo-cd/v2/cmd/argocd-applicationset-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v2/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v2/cmd/argocd-repo-server/commands"
	argoserver "github.com/argoproj/argo-cd/v2/cmd/argocd-server/commands"
	"github.com/argoproj/argo-cd/v2/cmd/util"
)

// kube marks the roles run through component-base's cli.Run (klog flags,
// logs flushed on exit).
var roles = map[string]struct {
	cmd  func() *cobra.Command
	kube bool
}{
	"kube-apiserver":                   {kubeapiserver.NewAPIServerCommand, true},
	"kube-controller-manager":          {kcm.NewControllerManagerCommand, true},
	"kube-scheduler":                   {func() *cobra.Command { return kubescheduler.NewSchedulerCommand() }, true},
	"kubelet":                          {kubelet.NewKubeletCommand, true},
	"kube-proxy":                       {kubeproxy.NewProxyCommand, true},
	"kubectl":                          {kubectl.NewDefaultKubectlCommand, true},
	"argocd-server":                    {argoserver.NewCommand, false},
	"argocd-application-controller":    {appcontroller.NewCommand, false},
	"argocd-repo-server":               {reposerver.NewCommand, false},
	"argocd-applicationset-controller": {applicationset.NewCommand, false},
	// git runs `argocd` (via GIT_ASKPASS) to get credentials from the repo-server.
	"argocd":              {gitaskpass.NewCommand, false},
	"argocd-git-ask-pass": {gitaskpass.NewCommand, false},
}

func main() {
	role := os.Getenv("ARGOCD_BINARY_NAME")
	if role == "" {
		role = filepath.Base(os.Args[0])
	}
	if _, ok := roles[role]; !ok && len(os.Args) > 1 {
		role = os.Args[1]
		os.Args = append(os.Args[:1], os.Args[2:]...)
	}
	r, ok := roles[role]
	if !ok {
		names := make([]string, 0, len(roles))
		for n := range roles {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: e2ecluster ROLE [flags] (or link it as ROLE); roles: %s\n", strings.Join(names, " "))
		os.Exit(2)
	}
	if r.kube {
		os.Exit(cli.Run(r.cmd()))
	}
	util.SetAutoMaxProcs(role == "argocd" || role == "argocd-git-ask-pass")
	if err := r.cmd().Execute(); err != nil {
		os.Exit(1)
	}
}
