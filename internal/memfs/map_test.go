package memfs

import (
	"testing"
	"testing/fstest"
)

func TestMapIsAnFS(t *testing.T) {
	m := Map{"a.txt": []byte("a"), "base/app/deploy.yaml": []byte("kind: Deployment\n"), "base/kustomization.yaml": []byte("resources: []\n")}
	if err := fstest.TestFS(m, "a.txt", "base/app/deploy.yaml", "base/kustomization.yaml"); err != nil {
		t.Fatal(err)
	}
}
