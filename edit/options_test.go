package edit

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParseOptionsIsStrict: every mistake the old parser swallowed is an
// error naming the key; good text comes back typed.
func TestParseOptionsIsStrict(t *testing.T) {
	for _, tc := range []struct{ method, text, want string }{
		{"linear", "orthonormal=1", "orthonormal"},
		{"linear", "orthonormal=yes", "true|false"},
		{"linear", "nosuchkey=3", `"nosuchkey"`},
		{"warped", "nosuchkey=3", "dipoles (integer)"}, // the message lists the method's options
		{"warped", "dipoles=16.7", "dipoles"},
		{"warped", "step=fast", "step"},
		{"warped", "step=NaN", "step"},
		{"curvilinear", "flow=rk4", "coupling|ode"},
		{"curvilinear", "layers=4,layers=5", "twice"},
		{"ganspace", "mode=pca", "activations|latent"},
		{"sefa", "k=3", "takes no options"},
		{"interfacegan", "solver=tree", "logistic|svm"},
		{"linear", "orthonormal", "key=value"},
		{"nosuch", "", "unknown method"},
	} {
		_, err := ParseOptions(tc.method, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseOptions(%s, %q) = %v, want an error containing %q", tc.method, tc.text, err, tc.want)
		}
	}
	o, err := ParseOptions("warped", "dipoles=8,step=0.25,init_scale=2")
	if err != nil {
		t.Fatal(err)
	}
	w, err := Resolve("warped", o, DefaultWarped())
	if err != nil || w.Dipoles != 8 || w.Step != 0.25 || w.InitScale != 2 || w.Gamma != 0 {
		t.Fatalf("warped options %+v, %v", w, err)
	}
	o, err = ParseOptions("interfacegan", "factors=smile+bangs,condition=smile:pitch+yaw;bangs:hair_length,solver=svm")
	if err != nil {
		t.Fatal(err)
	}
	fit, err := Resolve("interfacegan", o, DefaultInterFaceGANFit())
	if err != nil {
		t.Fatal(err)
	}
	factors, opt, err := fit.Boundaries()
	if err != nil || strings.Join(factors, ",") != "smile,bangs" || opt.Solver != "svm" ||
		strings.Join(opt.Condition["smile"], ",") != "pitch,yaw" || strings.Join(opt.Condition["bangs"], ",") != "hair_length" {
		t.Fatalf("interfacegan: %q %+v %v", factors, opt, err)
	}
	if _, err := ParseOptions("interfacegan", "condition=smile"); err != nil {
		t.Fatal(err) // the text form is checked by Validate, not by the parser
	}
	if err := ValidateOptions("interfacegan", Options{"condition": "smile"}); err == nil || !strings.Contains(err.Error(), "condition") {
		t.Errorf("condition without a colon: %v", err)
	}
}

// TestResolveFromJSON: options as editor.json gives them back (numbers as
// float64) decode; a fraction in an integer field, a word for a number, a
// value out of range and an unknown key are refused by name.
func TestResolveFromJSON(t *testing.T) {
	var o Options
	if err := json.Unmarshal([]byte(`{"dipoles": 4, "step": 0.5, "train_substeps": 6}`), &o); err != nil {
		t.Fatal(err)
	}
	w, err := Resolve("warped", o, DefaultWarped())
	if err != nil || w.Dipoles != 4 || w.TrainSubsteps != 6 {
		t.Fatalf("%+v %v", w, err)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{"dipoles": 16.7}, "dipoles"},
		{Options{"dipoles": "16"}, "dipoles"},
		{Options{"dipoles": 5000}, "dipoles = 5000"},
		{Options{"gamma": -1.0}, "gamma"},
		{Options{"orthonormal": true}, `"orthonormal"`},
	} {
		if _, err := Resolve("warped", tc.o, DefaultWarped()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(warped, %v) = %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
	// Constructors read options only this way: a bad one fails New by name.
	if _, err := New("curvilinear", 2, 4, Options{"layers": 2.5}, nil, edTestBackend(t)); err == nil || !strings.Contains(err.Error(), "layers") {
		t.Errorf("New(curvilinear, layers=2.5): %v", err)
	}
	if _, err := New("linear", 2, 4, Options{"orthonormal": 1.0}, nil, edTestBackend(t)); err == nil || !strings.Contains(err.Error(), "orthonormal") {
		t.Errorf("New(linear, orthonormal=1.0): %v", err)
	}
	e, err := New("linear", 2, 4, Options{"orthonormal": true}, nil, edTestBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	if e.(*Linear).Context().InAbsPath(Scope+"/linear").GetVariable("S") == nil {
		t.Error("orthonormal=true did not make the skew-symmetric parameter")
	}
}

// TestOptionKeysCoverEveryMethod: every method has an options struct, and
// every field of it a key.
func TestOptionKeysCoverEveryMethod(t *testing.T) {
	for _, m := range Methods() {
		if _, ok := optionTypes[m]; !ok {
			t.Errorf("method %s has no options struct", m)
		}
		for _, k := range OptionKeys(m) {
			if strings.HasPrefix(k, " ") {
				t.Errorf("%s: a field without an opt tag", m)
			}
		}
	}
}

// TestEncode: Encode is Resolve's inverse, defaults included.
func TestEncode(t *testing.T) {
	o, err := Resolve("warped", Options{"step": 0.25}, DefaultWarped())
	if err != nil {
		t.Fatal(err)
	}
	enc := Encode(o)
	if enc["step"] != 0.25 || enc["dipoles"] != 16 || len(enc) != len(OptionKeys("warped")) {
		t.Errorf("Encode = %v", enc)
	}
	back, err := Resolve("warped", enc, WarpedOptions{})
	if err != nil || back != o {
		t.Errorf("Resolve(Encode(o)) = %+v, %v; want %+v", back, err, o)
	}
}
