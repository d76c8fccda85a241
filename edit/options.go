package edit

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Typed options. Each method's hyper-parameters are a struct whose fields
// carry an `opt:"key"` tag (and, for strings, `allowed:"a,b"`); editor.json
// keeps them as the Options map (Spec.Params) so the file format stays one
// JSON object. Options reach a struct only through decodeOptions, and text
// from the command line only through ParseOptions: both are strict, so a key
// no method knows, a word where a number belongs or a fraction where an
// integer belongs is an error that names the key — never a default used in
// silence.

// LinearOptions are the linear method's options.
type LinearOptions struct {
	// Orthonormal directions: A = exp(S − Sᵀ)[:, :K] (default: free columns,
	// normalised).
	Orthonormal bool `opt:"orthonormal"`
}

// DefaultLinear is the linear method's defaults (the paper's free directions).
func DefaultLinear() LinearOptions { return LinearOptions{} }

// Validate checks the options' ranges.
func (o LinearOptions) Validate() error { return nil }

// WarpedOptions are the warped method's options (see Warped).
type WarpedOptions struct {
	Dipoles       int     `opt:"dipoles"`        // dipoles per direction (2 support vectors each)
	Step          float64 `opt:"step"`           // longest sub-step of an edit path
	Gamma         float64 `opt:"gamma"`          // RBF width γ; 0 (automatic): 1/d
	InitScale     float64 `opt:"init_scale"`     // scale of the initial support vectors
	TrainSubsteps int     `opt:"train_substeps"` // sub-steps unrolled in training; 0 (automatic): ⌈largest ε / step⌉
}

// DefaultWarped is the warped method's defaults (WarpedGANSpace's).
func DefaultWarped() WarpedOptions { return WarpedOptions{Dipoles: 16, Step: 0.5, InitScale: 1} }

// Validate checks the options' ranges.
func (o WarpedOptions) Validate() error {
	switch {
	case o.Dipoles < 1 || o.Dipoles > 1024:
		return fmt.Errorf("option dipoles = %d, want 1 … 1024", o.Dipoles)
	case !(o.Step >= 0.01 && o.Step <= MaxStep):
		return fmt.Errorf("option step = %v, want a number in [0.01, %d]", o.Step, MaxStep)
	case !(o.Gamma >= 0) || math.IsInf(o.Gamma, 0):
		return fmt.Errorf("option gamma = %v, want a positive number (0: 1/d)", o.Gamma)
	case !(o.InitScale >= 0) || math.IsInf(o.InitScale, 0):
		return fmt.Errorf("option init_scale = %v, want a non-negative number", o.InitScale)
	case o.TrainSubsteps < 0 || o.TrainSubsteps > 1000:
		return fmt.Errorf("option train_substeps = %d, want 1 … 1000 (0: from step)", o.TrainSubsteps)
	}
	return nil
}

// CurvilinearOptions are the curvilinear method's options (see Curvilinear).
type CurvilinearOptions struct {
	Flow     string  `opt:"flow" allowed:"coupling,ode"`
	Layers   int     `opt:"layers"`    // coupling layers
	Hidden   int     `opt:"hidden"`    // hidden units of each layer's MLP
	ScaleMax float64 `opt:"scale_max"` // bound of the coupling log-scales
	ODESteps int     `opt:"ode_steps"` // RK4 steps of the ODE flow
}

// DefaultCurvilinear is the curvilinear method's defaults.
func DefaultCurvilinear() CurvilinearOptions {
	return CurvilinearOptions{Flow: "coupling", Layers: 4, Hidden: 128, ScaleMax: 2, ODESteps: 8}
}

// Validate checks the options' ranges.
func (o CurvilinearOptions) Validate() error {
	switch {
	case o.Flow != "coupling" && o.Flow != "ode":
		return fmt.Errorf("option flow = %q, want \"coupling\" or \"ode\"", o.Flow)
	case o.Hidden < 1 || o.Hidden > 4096:
		return fmt.Errorf("option hidden = %d, want 1 … 4096", o.Hidden)
	case o.Flow == "coupling" && (o.Layers < 1 || o.Layers > 64):
		return fmt.Errorf("option layers = %d, want 1 … 64", o.Layers)
	case o.Flow == "coupling" && !(o.ScaleMax > 0 && o.ScaleMax <= 20):
		return fmt.Errorf("option scale_max = %v, want a number in (0, 20]", o.ScaleMax)
	case o.Flow == "ode" && (o.ODESteps < 1 || o.ODESteps > 1000):
		return fmt.Errorf("option ode_steps = %d, want 1 … 1000", o.ODESteps)
	}
	return nil
}

// PotentialOptions are the potential-flow method's options (see Potential).
type PotentialOptions struct {
	Hidden    int     `opt:"hidden"`     // hidden units of each direction's potential u_k
	Step      float64 `opt:"step"`       // Euler step Δt of flow time
	PDEWeight float64 `opt:"pde_weight"` // weight of the wave-equation residual in training
	ICWeight  float64 `opt:"ic_weight"`  // weight of the initial condition ∇_z u(z, 0) = 0 (0: off)
	InitScale float64 `opt:"init_scale"` // scale of the initial output weights (‖∇u‖ ≈ init_scale)
	Timesteps int     `opt:"timesteps"`  // Euler steps unrolled in training; 0 (automatic): ⌈largest ε / step⌉
}

// DefaultPotential is the potential-flow method's defaults.
func DefaultPotential() PotentialOptions {
	return PotentialOptions{Hidden: 64, Step: 0.5, PDEWeight: 1, InitScale: 1}
}

// Validate checks the options' ranges.
func (o PotentialOptions) Validate() error {
	switch {
	case o.Hidden < 1 || o.Hidden > 4096:
		return fmt.Errorf("option hidden = %d, want 1 … 4096", o.Hidden)
	case !(o.Step >= 0.01 && o.Step <= MaxStep):
		return fmt.Errorf("option step = %v, want a number in [0.01, %d]", o.Step, MaxStep)
	case !(o.PDEWeight >= 0) || math.IsInf(o.PDEWeight, 0):
		return fmt.Errorf("option pde_weight = %v, want a non-negative number", o.PDEWeight)
	case !(o.ICWeight >= 0) || math.IsInf(o.ICWeight, 0):
		return fmt.Errorf("option ic_weight = %v, want a non-negative number", o.ICWeight)
	case !(o.InitScale > 0) || math.IsInf(o.InitScale, 0):
		return fmt.Errorf("option init_scale = %v, want a positive number", o.InitScale)
	case o.Timesteps < 0 || o.Timesteps > 1000:
		return fmt.Errorf("option timesteps = %d, want 1 … 1000 (0: from step)", o.Timesteps)
	}
	return nil
}

// GANSpaceOptions are the options of fitting GANSpace.
type GANSpaceOptions struct {
	// Mode: PCA of the first layer's activations, regressed back to z
	// (default), or of the latents themselves.
	Mode string `opt:"mode" allowed:"activations,latent"`
}

// DefaultGANSpace is GANSpace's defaults.
func DefaultGANSpace() GANSpaceOptions { return GANSpaceOptions{Mode: "activations"} }

// Validate checks the options.
func (o GANSpaceOptions) Validate() error { return nil }

// SeFaOptions: SeFa has no options.
type SeFaOptions struct{}

// Validate checks the options.
func (o SeFaOptions) Validate() error { return nil }

// InterFaceGANFitOptions are the command-line options of fitting
// InterFaceGAN, in their text forms; Boundaries turns them into
// InterFaceGANOptions.
type InterFaceGANFitOptions struct {
	Factors   string  `opt:"factors"` // "smile+bangs" (default: all the oracle's factors)
	Solver    string  `opt:"solver" allowed:"logistic,svm"`
	Condition string  `opt:"condition"` // "smile:pitch+yaw;bangs:hair_length"
	L2        float64 `opt:"l2"`        // 0: 1e-3
	Ratio     float64 `opt:"ratio"`     // 0: 0.3
}

// DefaultInterFaceGANFit is InterFaceGAN's defaults.
func DefaultInterFaceGANFit() InterFaceGANFitOptions {
	return InterFaceGANFitOptions{Solver: "logistic"}
}

// Validate checks the options' forms.
func (o InterFaceGANFitOptions) Validate() error {
	_, _, err := o.Boundaries()
	return err
}

// Boundaries returns the factors to fit (nil: all) and the fit's options.
func (o InterFaceGANFitOptions) Boundaries() (factors []string, opt InterFaceGANOptions, err error) {
	if o.Factors != "" {
		factors = strings.Split(o.Factors, "+")
		if slices.Contains(factors, "") {
			return nil, opt, fmt.Errorf("option factors = %q, want factor+factor+…", o.Factors)
		}
	}
	switch {
	case !(o.L2 >= 0) || math.IsInf(o.L2, 0):
		return nil, opt, fmt.Errorf("option l2 = %v, want a non-negative number", o.L2)
	case !(o.Ratio >= 0 && o.Ratio <= 0.5):
		return nil, opt, fmt.Errorf("option ratio = %v, want a number in [0, 0.5]", o.Ratio)
	}
	opt = InterFaceGANOptions{Solver: o.Solver, L2: o.L2, Ratio: o.Ratio}
	if o.Condition != "" {
		opt.Condition = map[string][]string{}
		for _, part := range strings.Split(o.Condition, ";") {
			main, conds, ok := strings.Cut(part, ":")
			if !ok || main == "" || conds == "" || slices.Contains(strings.Split(conds, "+"), "") {
				return nil, opt, fmt.Errorf("option condition: %q is not factor:other+other", part)
			}
			opt.Condition[main] = strings.Split(conds, "+")
		}
	}
	return factors, opt, nil
}

// optionTypes is each method's options struct.
var optionTypes = map[string]reflect.Type{
	"linear":       reflect.TypeFor[LinearOptions](),
	"warped":       reflect.TypeFor[WarpedOptions](),
	"curvilinear":  reflect.TypeFor[CurvilinearOptions](),
	"potential":    reflect.TypeFor[PotentialOptions](),
	"ganspace":     reflect.TypeFor[GANSpaceOptions](),
	"sefa":         reflect.TypeFor[SeFaOptions](),
	"interfacegan": reflect.TypeFor[InterFaceGANFitOptions](),
}

// optionField is one option of a method.
type optionField struct {
	key     string
	index   int
	kind    reflect.Kind
	allowed []string
}

func optionFields(t reflect.Type) []optionField {
	var fs []optionField
	for i := range t.NumField() {
		f := t.Field(i)
		of := optionField{key: f.Tag.Get("opt"), index: i, kind: f.Type.Kind()}
		if a := f.Tag.Get("allowed"); a != "" {
			of.allowed = strings.Split(a, ",")
		}
		fs = append(fs, of)
	}
	return fs
}

// describe is "key (type)" or "key (a|b)", for messages.
func (f optionField) describe() string {
	if f.allowed != nil {
		return fmt.Sprintf("%s (%s)", f.key, strings.Join(f.allowed, "|"))
	}
	return fmt.Sprintf("%s (%s)", f.key, map[reflect.Kind]string{reflect.Bool: "true|false", reflect.Int: "integer", reflect.Float64: "number", reflect.String: "text"}[f.kind])
}

// OptionKeys describes the options of method, "key (type)" each; nil for
// an unknown method.
func OptionKeys(method string) []string {
	t, ok := optionTypes[method]
	if !ok {
		return nil
	}
	var out []string
	for _, f := range optionFields(t) {
		out = append(out, f.describe())
	}
	return out
}

func lookupOption(method, key string) (optionField, error) {
	t, ok := optionTypes[method]
	if !ok {
		return optionField{}, fmt.Errorf("unknown method %q (known: %s)", method, strings.Join(Methods(), ", "))
	}
	for _, f := range optionFields(t) {
		if f.key == key {
			return f, nil
		}
	}
	keys := OptionKeys(method)
	if len(keys) == 0 {
		return optionField{}, fmt.Errorf("option %q: %s takes no options", key, method)
	}
	return optionField{}, fmt.Errorf("option %q: %s has no such option (options: %s)", key, method, strings.Join(keys, ", "))
}

// ParseOptions reads command-line options "key=value,key=value" of method,
// strictly: every key must be one of the method's, booleans are true or
// false, integers have no fraction, numbers are finite, and words are among
// the allowed ones. The result is typed as editor.json keeps it.
func ParseOptions(method, s string) (Options, error) {
	opt := Options{}
	if _, ok := optionTypes[method]; !ok {
		return nil, fmt.Errorf("unknown method %q (known: %s)", method, strings.Join(Methods(), ", "))
	}
	if s == "" {
		return opt, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("option %q is not key=value", kv)
		}
		f, err := lookupOption(method, k)
		if err != nil {
			return nil, err
		}
		if _, dup := opt[k]; dup {
			return nil, fmt.Errorf("option %q given twice", k)
		}
		bad := func() error { return fmt.Errorf("option %s = %q: want %s", k, v, f.describe()) }
		switch f.kind {
		case reflect.Bool:
			if v != "true" && v != "false" {
				return nil, bad()
			}
			opt[k] = v == "true"
		case reflect.Int:
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, bad()
			}
			opt[k] = n
		case reflect.Float64:
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, bad()
			}
			opt[k] = x
		default:
			if f.allowed != nil && !slices.Contains(f.allowed, v) {
				return nil, bad()
			}
			opt[k] = v
		}
	}
	return opt, nil
}

// decodeOptions fills dst (a pointer to method's options struct, holding
// its defaults) from o, strictly as ParseOptions reads text; numbers may be
// float64, as editor.json gives them back, but an integer field takes only
// integral values.
func decodeOptions[T any](method string, o Options, dst *T) error {
	v := reflect.ValueOf(dst).Elem()
	if want := optionTypes[method]; v.Type() != want {
		return fmt.Errorf("edit: %s options are %v, not %v", method, want, v.Type())
	}
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, err := lookupOption(method, k)
		if err != nil {
			return err
		}
		val, fv := o[k], v.Field(f.index)
		bad := func() error { return fmt.Errorf("option %s = %v (%T): want %s", k, val, val, f.describe()) }
		switch x := val.(type) {
		case bool:
			if f.kind != reflect.Bool {
				return bad()
			}
			fv.SetBool(x)
		case int:
			switch f.kind {
			case reflect.Int:
				fv.SetInt(int64(x))
			case reflect.Float64:
				fv.SetFloat(float64(x))
			default:
				return bad()
			}
		case float64:
			switch {
			case math.IsNaN(x) || math.IsInf(x, 0):
				return bad()
			case f.kind == reflect.Float64:
				fv.SetFloat(x)
			case f.kind == reflect.Int && x == math.Trunc(x) && math.Abs(x) < 1<<31:
				fv.SetInt(int64(x))
			default:
				return bad()
			}
		case string:
			if f.kind != reflect.String || (f.allowed != nil && !slices.Contains(f.allowed, x)) {
				return bad()
			}
			fv.SetString(x)
		default:
			return bad()
		}
	}
	return nil
}

// Validator is a method's options struct.
type Validator interface{ Validate() error }

// Resolve decodes o as method's options over the defaults def (the typed
// struct: LinearOptions, WarpedOptions, …), strictly, and validates the
// result; errors name the method and the key.
func Resolve[T Validator](method string, o Options, def T) (T, error) {
	if err := decodeOptions(method, o, &def); err != nil {
		return def, fmt.Errorf("edit: %s: %w", method, err)
	}
	if err := def.Validate(); err != nil {
		return def, fmt.Errorf("edit: %s: %w", method, err)
	}
	return def, nil
}

// ValidateOptions checks o as method's options, as the method's constructor
// will: the command line checks --opt with it before any work starts.
func ValidateOptions(method string, o Options) error {
	var err error
	switch method {
	case "linear":
		_, err = Resolve(method, o, DefaultLinear())
	case "warped":
		_, err = Resolve(method, o, DefaultWarped())
	case "curvilinear":
		_, err = Resolve(method, o, DefaultCurvilinear())
	case "potential":
		_, err = Resolve(method, o, DefaultPotential())
	case "ganspace":
		_, err = Resolve(method, o, DefaultGANSpace())
	case "sefa":
		_, err = Resolve(method, o, SeFaOptions{})
	case "interfacegan":
		_, err = Resolve(method, o, DefaultInterFaceGANFit())
	default:
		err = fmt.Errorf("edit: unknown method %q (known: %s)", method, strings.Join(Methods(), ", "))
	}
	return err
}

// Encode is the Options map of a typed options struct (by its `opt` keys):
// Resolve's inverse, for writing out what a method runs with, defaults
// included.
func Encode[T Validator](o T) Options {
	v := reflect.ValueOf(o)
	out := Options{}
	for _, f := range optionFields(v.Type()) {
		out[f.key] = v.Field(f.index).Interface()
	}
	return out
}
