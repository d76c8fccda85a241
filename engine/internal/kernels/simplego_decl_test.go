package kernels

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends/simplego"
)

// TestSimplegoDeclarations reads the source of the GoMLX release go.mod
// names and checks that simplego still declares its executor table and
// executor type the way simplego_hooks.go reads them through go:linkname —
// the one thing no run-time check can see. An upgrade of GoMLX fails here
// (and the fast executors stay out) instead of writing through a table of
// another type.
func TestSimplegoDeclarations(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}} {{.Dir}}", gomlxModule).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", gomlxModule, err)
	}
	version, dir, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if version != verifiedGoMLX {
		t.Fatalf("go.mod names GoMLX %s; simplego_hooks.go is verified for %s: check its declarations and update verifiedGoMLX", version, verifiedGoMLX)
	}
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "backends", "simplego", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("simplego source under %s: %v", dir, err)
	}
	found := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range g.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					found["type "+s.Name.Name] = exprString(t, fset, s.Type)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if s.Type != nil {
							found["var "+n.Name] = exprString(t, fset, s.Type)
						}
					}
				}
			}
		}
	}
	for name, want := range map[string]string{
		"var nodeExecutors": "[backends.OpTypeLast]nodeExecutor",
		"type nodeExecutor": "func(backend *Backend, node *Node, inputs []*Buffer, inputsOwned []bool) (*Buffer, error)",
	} {
		if got, ok := found[name]; !ok || got != want {
			t.Errorf("simplego %s: declared %q, the hooks expect %q", name, got, want)
		}
	}
	// Our side of the link: simplegoExecutor has the same signature.
	want := reflect.TypeOf(func(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error) {
		return nil, nil
	})
	if got := reflect.TypeOf(simplegoExecutor(nil)); !got.ConvertibleTo(want) || got.Kind() != reflect.Func {
		t.Errorf("simplegoExecutor is %s, want %s", got, want)
	}
}

func exprString(t *testing.T, fset *token.FileSet, e ast.Expr) string {
	var b bytes.Buffer
	if err := printer.Fprint(&b, fset, e); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
