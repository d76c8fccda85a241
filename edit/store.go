package edit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
	"latentedit/internal/artifact"
	"latentedit/internal/atomicfile"
)

// Scope is where every editor keeps its variables in a context.
const Scope = "/editor"

// FormatVersion is the editor.json layout this build reads and writes.
const FormatVersion = 1

// Files of an editor directory (model/editors/<name>/).
const (
	SpecFile    = "editor.json"
	WeightsFile = "editor.ckpt"
)

// Trainable is an editor package discover can train: its move is a graph.
type Trainable interface {
	Editor
	// Shift builds φ_k^ε(z) for a batch in z's graph: z [B, d], onehot [B, K]
	// selects k, eps [B] is the signed amount. penalty is a scalar the trainer
	// adds to the loss (the curvilinear flow's mean log-det², the potential
	// flow's weighted wave residual), or nil.
	Shift(ctx *context.Context, z, onehot, eps *graph.Node) (shifted, penalty *graph.Node)
	// EpsRange is the default range of |ε| sampled in training.
	EpsRange() (lo, hi float64)
	// Context holds the editor's variables under Scope.
	Context() *context.Context
}

// Spec is editor.json.
type Spec struct {
	FormatVersion int            `json:"format_version"`
	Method        string         `json:"method"`
	K             int            `json:"k"`
	LatentDim     int            `json:"latent_dim"`
	Names         []string       `json:"names"`
	Params        map[string]any `json:"params,omitempty"` // method hyper-parameters
	WeightsSHA256 string         `json:"weights_sha256"`
	Notes         map[string]any `json:"notes,omitempty"` // training facts (steps, RCA) for people
	// Space is the latent space the editor moves: "z" (absent in files
	// written before spaces existed), "w" or "w+" (generator.InSpace).
	Space string `json:"space,omitempty"`
}

// Options are the method hyper-parameters, by name, as in Spec.Params; a
// method reads them only through its typed options struct (options.go).
// Fitted editors keep the facts of their fit here too.
type Options map[string]any

// constructor makes an editor of one method with fresh (or, on load, to be
// loaded) variables in ctx.
type constructor func(k, d int, opt Options, ctx *context.Context, be backends.Backend) (Editor, error)

var methods = map[string]constructor{}

func register(name string, c constructor) { methods[name] = c }

// Methods lists the editor methods.
func Methods() []string {
	var m []string
	for k := range methods {
		m = append(m, k)
	}
	sort.Strings(m)
	return m
}

// New makes an editor with K directions for latents of dimension d. The
// learned methods (linear, warped, curvilinear, potential) get fresh variables in ctx
// (nil: a new context); the fitted ones are built by their own constructors
// (GANSpace, SeFa, InterFaceGAN) and only loaded through here.
func New(method string, k, d int, opt Options, ctx *context.Context, be backends.Backend) (Editor, error) {
	c, ok := methods[method]
	if !ok {
		return nil, fmt.Errorf("edit: unknown method %q (known: %s)", method, strings.Join(Methods(), ", "))
	}
	if k < 1 || k > 512 || d < 1 || d > 4096 {
		return nil, fmt.Errorf("edit: %s: K %d must be in [1, 512] and latent dim %d in [1, 4096]", method, k, d)
	}
	if ctx == nil {
		ctx = context.New()
	}
	var e Editor
	err := engine.Safe("edit: new "+method, func() error {
		var err error
		e, err = c(k, d, opt, ctx.Checked(false), be)
		return err
	})
	return e, err
}

// Rename gives the directions of the editor saved in dir new names, made
// unique by UniqueNames, and rewrites dir/editor.json atomically; the
// weights do not change. It is how `evaluate` names matched directions.
func Rename(dir string, names []string) error {
	path := filepath.Join(dir, SpecFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rename editor %s: %w", dir, err)
	}
	spec, err := ParseSpec(raw)
	if err != nil {
		return fmt.Errorf("rename editor %s: %w", path, err)
	}
	if len(names) != spec.K {
		return fmt.Errorf("rename editor %s: %d names for k = %d", path, len(names), spec.K)
	}
	spec.Names = UniqueNames(names)
	out, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(out, '\n'), atomicfile.DefaultPerm)
}

// named lets Save and SetNames reach an editor's names and parameters.
type named interface {
	Editor
	Params() Options
	SetNames([]string) error
	setSpace(string)
	Context() *context.Context
	backend() backends.Backend
}

// Save writes dir/editor.json and dir/editor.ckpt atomically; notes (may be
// nil) are stored for people reading the file.
func Save(dir string, e Editor, notes map[string]any) error {
	n, ok := e.(named)
	if !ok {
		return fmt.Errorf("edit: save: %s editor cannot be saved", e.Method())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("edit: save: %w", err)
	}
	wpath := filepath.Join(dir, WeightsFile)
	// A fresh, never-run editor has variables without values yet.
	if err := engine.Safe("edit: save", func() error { return n.Context().InitializeVariables(n.backend(), nil) }); err != nil {
		return fmt.Errorf("edit: save: %w", err)
	}
	if err := engine.SaveCheckpoint(n.Context(), wpath, Scope, map[string]string{"method": e.Method()}); err != nil {
		return fmt.Errorf("edit: save: %w", err)
	}
	sum, err := artifact.FileSHA256(wpath)
	if err != nil {
		return fmt.Errorf("edit: save: %w", err)
	}
	spec := Spec{FormatVersion: FormatVersion, Method: e.Method(), K: e.K(), LatentDim: e.LatentDim(),
		Names: e.Names(), Params: n.Params(), WeightsSHA256: sum, Notes: notes}
	if sp := e.Space(); sp != SpaceZ {
		spec.Space = sp
	}
	raw, _ := json.MarshalIndent(spec, "", "  ")
	return atomicfile.WriteFile(filepath.Join(dir, SpecFile), append(raw, '\n'), atomicfile.DefaultPerm)
}

// ParseSpec decodes and validates editor.json's content.
func ParseSpec(raw []byte) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, err
	}
	switch {
	case s.FormatVersion != FormatVersion:
		return s, fmt.Errorf("field format_version: %d, this build reads %d", s.FormatVersion, FormatVersion)
	case methods[s.Method] == nil:
		return s, fmt.Errorf("field method: unknown method %q (known: %s)", s.Method, strings.Join(Methods(), ", "))
	case s.K < 1 || s.K > 512:
		return s, fmt.Errorf("field k: %d out of [1, 512]", s.K)
	case s.LatentDim < 1 || s.LatentDim > 4096:
		return s, fmt.Errorf("field latent_dim: %d out of [1, 4096]", s.LatentDim)
	case len(s.Names) != s.K:
		return s, fmt.Errorf("field names: %d names for k = %d", len(s.Names), s.K)
	case len(s.WeightsSHA256) != 64:
		return s, errors.New("field weights_sha256: not a sha256")
	case s.Space != "" && s.Space != SpaceZ && s.Space != "w" && s.Space != "w+":
		return s, fmt.Errorf("field space: %q, want z, w or w+", s.Space)
	}
	if s.Space == "" {
		s.Space = SpaceZ
	}
	return s, nil
}

// ReadSpec reads and validates dir/editor.json.
func ReadSpec(dir string) (Spec, error) {
	path := filepath.Join(dir, SpecFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("load editor %s: %w", dir, err)
	}
	spec, err := ParseSpec(raw)
	if err != nil {
		return spec, fmt.Errorf("load editor %s: %w", path, err)
	}
	return spec, nil
}

// Load reads an editor directory and checks it against the model it will
// edit, seen in the editor's space (editor.json's space; the caller reads it
// with ReadSpec and passes that view's latent dimension and space): space,
// latent dimension, method, the weights' checksum and shapes. Errors name
// the file and what is wrong.
func Load(dir string, space string, latentDim int, be backends.Backend) (Editor, error) {
	path := filepath.Join(dir, SpecFile)
	spec, err := ReadSpec(dir)
	if err != nil {
		return nil, err
	}
	if space == "" {
		space = SpaceZ
	}
	if spec.Space != space {
		return nil, fmt.Errorf("load editor %s: field space: the editor moves %s, the model was given in %s", path, spec.Space, space)
	}
	if spec.LatentDim != latentDim {
		return nil, fmt.Errorf("load editor %s: field latent_dim: %d, but the model's latent dimension in %s is %d", path, spec.LatentDim, space, latentDim)
	}
	wpath := filepath.Join(dir, WeightsFile)
	if err := artifact.CheckWeights(path, wpath, spec.WeightsSHA256); err != nil {
		return nil, fmt.Errorf("load editor %s: %w", dir, err)
	}
	ctx := context.New()
	if _, err := engine.LoadCheckpoint(ctx, wpath); err != nil {
		return nil, fmt.Errorf("load editor %s: %w", dir, err)
	}
	e, err := New(spec.Method, spec.K, spec.LatentDim, Options(spec.Params), ctx, be)
	if err != nil {
		return nil, fmt.Errorf("load editor %s: %s does not fit %s with k=%d: %w", dir, wpath, spec.Method, spec.K, err)
	}
	for v := range ctx.IterVariables() {
		if engine.InScope(v.Scope(), Scope) && !v.HasValue() {
			return nil, fmt.Errorf("load editor %s: %s lacks variable %s that %s needs", dir, wpath, v.ScopeAndName(), spec.Method)
		}
	}
	// One edit exercises every variable: a missing or reshaped one fails here.
	if _, err := One(e, make([]float32, latentDim), 0, 0.5); err != nil {
		return nil, fmt.Errorf("load editor %s: %s does not fit %s with k=%d: %w", dir, wpath, spec.Method, spec.K, err)
	}
	if err := e.(named).SetNames(spec.Names); err != nil {
		return nil, fmt.Errorf("load editor %s: %w", path, err)
	}
	e.(named).setSpace(spec.Space)
	return e, nil
}

// SpaceZ is the space of editors that record none.
const SpaceZ = "z"

// SetSpace records the latent space an editor moves in ("z", "w", "w+"),
// which Save writes to editor.json: trainers and fits set it from the model
// view they worked on (generator.Model.Space).
func SetSpace(e Editor, space string) error {
	n, ok := e.(named)
	if !ok {
		return fmt.Errorf("edit: %s editor has no space to set", e.Method())
	}
	switch space {
	case "", SpaceZ, "w", "w+":
	default:
		return fmt.Errorf("edit: space %q, want z, w or w+", space)
	}
	n.setSpace(space)
	return nil
}

// base holds what every editor shares.
type base struct {
	space  string // "" is z
	method string
	k, d   int
	names  []string
	opt    Options
	ctx    *context.Context
	be     backends.Backend
}

func newBase(method string, k, d int, opt Options, ctx *context.Context, be backends.Backend) base {
	if opt == nil {
		opt = Options{}
	}
	return base{method: method, k: k, d: d, names: DefaultNames(k), opt: opt, ctx: ctx, be: be}
}

func (b *base) Method() string    { return b.method }
func (b *base) setSpace(s string) { b.space = s }

// Space is the latent space the editor moves: z, w or w+.
func (b *base) Space() string {
	if b.space == "" {
		return SpaceZ
	}
	return b.space
}
func (b *base) K() int                    { return b.k }
func (b *base) LatentDim() int            { return b.d }
func (b *base) Names() []string           { return append([]string(nil), b.names...) }
func (b *base) Params() Options           { return b.opt }
func (b *base) Context() *context.Context { return b.ctx }
func (b *base) backend() backends.Backend { return b.be }
func (b *base) SetNames(n []string) error {
	if len(n) != b.k {
		return fmt.Errorf("edit: %d names for %d directions", len(n), b.k)
	}
	seen := map[string]bool{}
	for _, s := range n {
		if s == "" || seen[s] {
			return fmt.Errorf("edit: direction names must be unique and non-empty, got %q", n)
		}
		seen[s] = true
	}
	b.names = append([]string(nil), n...)
	return nil
}
