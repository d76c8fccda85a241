package interop

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/edit"
	"latentedit/generator"
	"latentedit/internal/atomicfile"
	"latentedit/interop/tensorfile"
)

// Export formats, each with the file extension it requires.
const (
	ExportSafetensors = "safetensors"
	ExportPyTorch     = "pt"
	ExportNpy         = "npy"
)

// ExportFormats lists the formats of Export.
var ExportFormats = []string{ExportSafetensors, ExportPyTorch, ExportNpy}

// ExportVersion is the "format" metadata of an exported editor; the PyTorch
// reference (interop/torch/latentedit_edit.py) checks it.
const ExportVersion = "latentedit-editor/1"

// ExportOptions of one export.
type ExportOptions struct {
	Editor edit.Editor
	Name   string // the editor's name, recorded in the metadata
	Model  string // the model it edits, recorded in the metadata
	Format string // one of ExportFormats
	Out    string // the file to create (with the format's extension); it must not exist
	// Frame is the code frame of an editor of w or w+ (the model's
	// InSpace(e.Space()).Frame()): its latents are codes (w − centre)/scale,
	// and a PyTorch user needs the frame to map their generator's w to them.
	Frame *generator.Frame
}

// conventions say, in the metadata, what each method's tensors mean; the
// reference implementation is interop/torch/latentedit_edit.py.
var conventions = map[string]string{
	"linear": "edit(z, k, t) = z + t * directions[k]; directions [K, d], unit rows (as the editor applies them: " +
		"normalised columns of A, or the first K columns of exp(S - S^T) when orthonormal)",
	"warped": "f_k(z) = sum_i alpha_i exp(-gamma_ki |z - support[k, i]|^2), gamma = exp(log_gamma), alpha = +1 for " +
		"the first dipoles support vectors, -1 for the rest; edit(z, k, t) walks n = ceil(|t| / step) steps of " +
		"size h = t / n: z += h * g / sqrt(|g|^2 + 1e-16), g = grad f_k(z)",
	"curvilinear": "edit(z, k, t) = f^-1(f(z) + t e_k); dense layers are x @ weights + biases ([in, out]); coupling: " +
		"layer l keeps the coordinates i with (i + l) even, s = scale_max tanh(scale(h)), t = shift(h), h = " +
		"tanh(dense1(tanh(dense0(x * mask)))), y = x exp(s) + t on the others; ode: dz/dtau = dense2(tanh(dense1(" +
		"tanh(dense0(z))))), RK4 with ode_steps steps over [0, 1], backwards for f^-1",
	"potential": "u_k(z, tau) = sum_j v[k, j] tanh(a_j), a = w[k] z + p[k] tau + b[k] (w [K, H, d]; p, b, v [K, H]; " +
		"c [K] is the wave speed of training, unused by edits); grad_z u_k = w[k]^T (v[k] * (1 - tanh(a)^2)); " +
		"edit(z, k, t) takes n = ceil(|t| / step) Euler steps of size h = t / n: z += h * grad_z u_k(z, tau_j), " +
		"tau_j = j |h|, j = 0 … n-1",
}

// Export writes an editor's tensors and metadata to o.Out for PyTorch:
//   - linear editors (linear, ganspace, sefa, interfacegan): "directions"
//     [K, d], the unit directions EditBatch moves along;
//   - warped: "support" [K, 2N, d] and "log_gamma" [K, 2N];
//   - curvilinear: the flow's dense layers, "layer<l>.<dense0|dense1|scale|shift>.<weights|biases>"
//     (coupling) or "ode.<dense0|dense1|dense2>.<weights|biases>" (ode).
//   - potential: the potentials' "w" [K, H, d], "p", "b", "v" [K, H] and
//     the wave speeds "c" [K] (training's; edits do not use them).
//
// Metadata (strings): format, method, k, latent_dim, names (a JSON list),
// params (the method's options with their defaults filled, JSON),
// convention, editor, model; for an editor of w or w+ also space,
// code_centre (JSON list), code_scale and code_styles: its latents are
// codes c = (w − code_centre)/code_scale (one per style layer in w+). safetensors keeps them in "__metadata__", pt
// as a "__metadata__" entry of the state dict, npy in a JSON sidecar beside
// the file (x.npy → x.json). npy holds one array, so only linear editors
// export to it.
//
// The output must not exist (nor, for npy, its sidecar), and its directory
// must: an existing file is refused, never overwritten. Files are written
// atomically; on any error nothing is left.
func Export(o ExportOptions) error {
	err := export(o)
	if err != nil {
		return fmt.Errorf("export %s: %w", o.Out, err)
	}
	return nil
}

func export(o ExportOptions) error {
	if o.Editor == nil || o.Out == "" {
		return errors.New("need an editor and an output file")
	}
	ext := map[string][]string{ExportSafetensors: {".safetensors"}, ExportPyTorch: {".pt", ".pth"}, ExportNpy: {".npy"}}[o.Format]
	if ext == nil {
		return fmt.Errorf("unknown format %q: want one of %s", o.Format, strings.Join(ExportFormats, ", "))
	}
	if got := strings.ToLower(filepath.Ext(o.Out)); !slices.Contains(ext, got) {
		return fmt.Errorf("format %s writes %s files, not %q", o.Format, strings.Join(ext, " or "), filepath.Ext(o.Out))
	}
	outs := []string{o.Out}
	sidecar := strings.TrimSuffix(o.Out, filepath.Ext(o.Out)) + ".json"
	if o.Format == ExportNpy {
		outs = append(outs, sidecar)
	}
	for _, p := range outs {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already exists: choose a new file or remove it", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if st, err := os.Stat(filepath.Dir(filepath.Clean(o.Out))); err != nil || !st.IsDir() {
		return fmt.Errorf("directory %s does not exist", filepath.Dir(filepath.Clean(o.Out)))
	}
	ts, meta, err := EditorTensors(o.Editor)
	if err != nil {
		return err
	}
	meta["editor"], meta["model"] = o.Name, o.Model
	if sp := o.Editor.Space(); sp != generator.SpaceZ {
		if o.Frame == nil || o.Frame.Space != sp {
			return fmt.Errorf("a %s editor's latents are codes of its model's w frame: the export needs the frame of %s", sp, sp)
		}
		centre, _ := json.Marshal(o.Frame.Centre)
		meta["space"], meta["code_centre"] = sp, string(centre)
		meta["code_scale"] = strconv.FormatFloat(float64(o.Frame.Scale), 'g', -1, 32)
		meta["code_styles"] = strconv.Itoa(o.Frame.Styles)
	}
	switch o.Format {
	case ExportSafetensors:
		return atomicfile.Write(o.Out, func(w io.Writer) error { return tensorfile.WriteSafetensors(w, ts, meta) })
	case ExportPyTorch:
		return atomicfile.Write(o.Out, func(w io.Writer) error { return tensorfile.WritePyTorch(w, ts, meta) })
	}
	if len(ts) != 1 {
		return fmt.Errorf("a %s editor has %d tensors and npy holds one: use safetensors or pt", o.Editor.Method(), len(ts))
	}
	raw, _ := json.MarshalIndent(meta, "", "  ")
	if err := atomicfile.WriteFile(sidecar, append(raw, '\n'), atomicfile.DefaultPerm); err != nil {
		return err
	}
	if err := atomicfile.Write(o.Out, func(w io.Writer) error { return tensorfile.WriteNpy(w, ts[0]) }); err != nil {
		os.Remove(sidecar)
		return err
	}
	return nil
}

// EditorTensors returns what Export writes: the editor's tensors and its
// metadata (see Export).
func EditorTensors(e edit.Editor) ([]tensorfile.Named, map[string]string, error) {
	method := e.Method()
	withParams, ok := e.(interface{ Params() edit.Options })
	if !ok {
		return nil, nil, fmt.Errorf("a %s editor has no parameters to export", method)
	}
	var (
		ts     []tensorfile.Named
		params any = withParams.Params()
		err    error
		conv   string
	)
	switch ed := e.(type) {
	case *edit.Linear:
		conv = conventions["linear"]
		dirs, err := ed.Directions()
		if err != nil {
			return nil, nil, err
		}
		flat := make([]float32, 0, e.K()*e.LatentDim())
		for _, v := range dirs {
			flat = append(flat, v...)
		}
		ts = []tensorfile.Named{{Name: "directions", Shape: []int{e.K(), e.LatentDim()}, Data: flat}}
	case *edit.Warped:
		conv = conventions["warped"]
		var o edit.WarpedOptions
		if o, err = edit.Resolve(method, withParams.Params(), edit.DefaultWarped()); err == nil {
			params = edit.Encode(o)
			ts, err = variables(ed.Context(), edit.Scope+"/warped")
		}
	case *edit.Curvilinear:
		conv = conventions["curvilinear"]
		var o edit.CurvilinearOptions
		if o, err = edit.Resolve(method, withParams.Params(), edit.DefaultCurvilinear()); err == nil {
			params = edit.Encode(o)
			ts, err = variables(ed.Context(), edit.Scope+"/curvilinear")
		}
	case *edit.Potential:
		conv = conventions["potential"]
		var o edit.PotentialOptions
		if o, err = edit.Resolve(method, withParams.Params(), edit.DefaultPotential()); err == nil {
			params = edit.Encode(o)
			ts, err = variables(ed.Context(), edit.Scope+"/potential")
		}
	default:
		return nil, nil, fmt.Errorf("method %s cannot be exported (exportable: linear, ganspace, sefa, interfacegan, warped, curvilinear, potential)", method)
	}
	if err != nil {
		return nil, nil, err
	}
	names, _ := json.Marshal(e.Names())
	p, err := json.Marshal(params)
	if err != nil {
		return nil, nil, fmt.Errorf("params: %w", err)
	}
	meta := map[string]string{
		"format": ExportVersion, "method": method, "k": strconv.Itoa(e.K()), "latent_dim": strconv.Itoa(e.LatentDim()),
		"names": string(names), "params": string(p), "convention": conv,
	}
	return ts, meta, nil
}

// variables are the values of ctx's variables under scope, named by their
// scope below it and their name, joined by dots ("layer0.dense0.weights").
func variables(ctx *context.Context, scope string) ([]tensorfile.Named, error) {
	var ts []tensorfile.Named
	for v := range ctx.IterVariables() {
		if v.Scope() != scope && !strings.HasPrefix(v.Scope(), scope+"/") {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(v.Scope(), scope), "/")
		name = strings.ReplaceAll(name, "/", ".")
		if name != "" {
			name += "."
		}
		name += v.Name()
		if !v.HasValue() {
			return nil, fmt.Errorf("variable %s has no value (an editor never run nor loaded)", v.ScopeAndName())
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.ScopeAndName(), err)
		}
		ts = append(ts, tensorfile.Named{Name: name, Shape: append([]int(nil), t.Shape().Dimensions...), Data: tensors.MustCopyFlatData[float32](t)})
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("no variables under %s", scope)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts, nil
}
