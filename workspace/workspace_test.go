package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "latentedit/dataset/faces"
	_ "latentedit/dataset/fundus"
	_ "latentedit/dataset/mnist"
	"latentedit/edit"
	"latentedit/evaluate"
)

// An embedded model's editors come from the shipped files until the work
// folder has one of the same name, which then shadows it.
func TestEditorsShadowShipped(t *testing.T) {
	t.Chdir(t.TempDir())
	ws, err := Open("faces-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	if ws.Shipped == "" || ws.Work != filepath.Join("work", "faces-gan") {
		t.Fatalf("embedded model: work %q shipped %q", ws.Work, ws.Shipped)
	}
	names := ws.Editors()
	if len(names) < 6 {
		t.Fatalf("shipped editors %v", names)
	}
	e, dir, err := ws.LoadEditor("sefa")
	if err != nil || !ws.IsShipped(dir) {
		t.Fatalf("shipped sefa: %v %s", err, dir)
	}
	mine := ws.NewEditorDir("sefa")
	if err := edit.Save(mine, e, map[string]any{"mine": true}); err != nil {
		t.Fatal(err)
	}
	if _, dir, err = ws.LoadEditor("sefa"); err != nil || dir != mine || ws.IsShipped(dir) {
		t.Fatalf("work editor should shadow the shipped one: %s %v", dir, err)
	}
	if got := ws.Editors(); len(got) != len(names) {
		t.Fatalf("a shadowing editor is listed twice: %v", got)
	}
	if _, _, err := ws.LoadEditor("nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("missing editor: %v", err)
	}
	if ws.OracleDir() == filepath.Join(ws.Work, OracleDir) {
		t.Fatal("the shipped oracle is not found")
	}
}

// A broken oracle in the work folder is an error, not a silent retrain
// over the user's files.
func TestBrokenOracleIsReported(t *testing.T) {
	t.Chdir(t.TempDir())
	ws, err := Open("faces-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(ws.Work, OracleDir)
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "oracle.json"), []byte("{}"), 0o644)
	if _, err := ws.Oracle(1, nil); err == nil {
		t.Fatal("broken oracle accepted")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "nothing"), ""); err == nil || !strings.Contains(err.Error(), "not a model directory") {
		t.Fatalf("missing model: %v", err)
	}
}

// The judge of quality reads the model's dataset at the model's size: the
// classifier for MNIST, a borrowed oracle of the same dataset and size for
// the faces VAE (by model name, model directory or oracle directory), and
// no oracle of another dataset.
func TestJudge(t *testing.T) {
	t.Chdir(t.TempDir())
	vae, err := Open("faces-vae", "")
	if err != nil {
		t.Fatal(err)
	}
	gan, err := Open("faces-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"faces-gan", gan.Shipped, gan.OracleDir()} {
		j, err := vae.Judge(from, 0, 0, nil)
		if o, ok := j.(*evaluate.Oracle); err != nil || !ok || o.Size != 32 {
			t.Errorf("--oracle %s: %T %v", from, j, err)
		}
	}
	if _, err := vae.Judge("fundus-gan", 0, 0, nil); err == nil || !strings.Contains(err.Error(), "resolution") {
		t.Errorf("the fundus oracle judged faces: %v", err)
	}
	if _, err := vae.Judge("nosuch", 0, 0, nil); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("missing oracle: %v", err)
	}
	mnist, err := Open("mnist-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	if j, err := mnist.Judge("", 0, 0, nil); err != nil {
		t.Errorf("mnist judge: %v", err)
	} else if c, ok := j.(*evaluate.Classifier); !ok || c.Classes != 10 {
		t.Errorf("mnist judge %T", j)
	}
	if _, err := mnist.Judge("faces-gan", 0, 0, nil); err == nil || !strings.Contains(err.Error(), "classifier") {
		t.Errorf("an oracle judged MNIST: %v", err)
	}
}
