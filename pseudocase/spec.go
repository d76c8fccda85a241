package pseudocase

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Lesion kinds a request can ask for.
const (
	Detachment  = "detachment"
	Haemorrhage = "haemorrhages"
	Cup         = "cup_to_disc"
)

// Lesion is one lesion of a request: the level the pseudo-case should show.
type Lesion struct {
	Kind string
	// Amount: detachment extent in (0,1], haemorrhage count in [1,6],
	// cup-to-disc ratio in [0.2,0.9].
	Amount float64
	// Angle (degrees, 0 = image right, 90 = up) of a detachment, when
	// HasAngle; without it the detachment goes wherever the editor puts it.
	Angle    float64
	HasAngle bool
}

// Request is a parsed --add list, in the order given.
type Request []Lesion

// aliases maps what users type to lesion kinds.
var aliases = map[string]string{
	"detachment": Detachment, "rd": Detachment,
	"haemorrhage": Haemorrhage, "haemorrhages": Haemorrhage, "hemorrhage": Haemorrhage, "hemorrhages": Haemorrhage,
	"cup": Cup, "cup_to_disc": Cup, "glaucoma": Cup,
}

// ParseRequest reads "detachment:0.6@45,haemorrhage:3,cup:0.7" (or the same
// joined by "+", as a combination reads: "cup:0.7+detachment:0.6@45"): each item
// is kind:amount, a detachment may add @angle in degrees. Each kind may
// appear once.
func ParseRequest(s string) (Request, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("--add: empty; want e.g. detachment:0.6@45,haemorrhage:3,cup:0.7")
	}
	var req Request
	seen := map[string]bool{}
	for _, item := range strings.Split(strings.ReplaceAll(s, "+", ","), ",") {
		item = strings.TrimSpace(item)
		name, val, ok := strings.Cut(item, ":")
		if !ok || val == "" {
			return nil, fmt.Errorf("--add: %q is not kind:amount (e.g. detachment:0.6@45)", item)
		}
		kind, ok := aliases[strings.ToLower(name)]
		if !ok {
			return nil, fmt.Errorf("--add: unknown lesion %q (detachment, haemorrhage, cup)", name)
		}
		if seen[kind] {
			return nil, fmt.Errorf("--add: %s given twice", kind)
		}
		seen[kind] = true
		l := Lesion{Kind: kind}
		amount, angle, hasAngle := strings.Cut(val, "@")
		if hasAngle && kind != Detachment {
			return nil, fmt.Errorf("--add: %q: only a detachment takes a position (@angle)", item)
		}
		a, err := strconv.ParseFloat(amount, 64)
		if err != nil || math.IsNaN(a) || math.IsInf(a, 0) {
			return nil, fmt.Errorf("--add: %q: amount %q is not a number", item, amount)
		}
		l.Amount = a
		switch kind {
		case Detachment:
			if a <= 0 || a > 1 {
				return nil, fmt.Errorf("--add: %q: detachment extent %g out of (0, 1]", item, a)
			}
		case Haemorrhage:
			if a != math.Trunc(a) || a < 1 || a > 6 {
				return nil, fmt.Errorf("--add: %q: haemorrhage count %g is not a whole number in [1, 6]", item, a)
			}
		case Cup:
			if a < 0.2 || a > 0.9 {
				return nil, fmt.Errorf("--add: %q: cup-to-disc ratio %g out of [0.2, 0.9]", item, a)
			}
		}
		if hasAngle {
			th, err := strconv.ParseFloat(angle, 64)
			if err != nil || math.IsNaN(th) || math.IsInf(th, 0) {
				return nil, fmt.Errorf("--add: %q: angle %q is not a number of degrees", item, angle)
			}
			l.Angle, l.HasAngle = math.Mod(math.Mod(th, 360)+360, 360), true
		}
		req = append(req, l)
	}
	return req, nil
}

// String is the canonical form of the request (what ParseRequest reads).
func (r Request) String() string {
	parts := make([]string, len(r))
	for i, l := range r {
		name := map[string]string{Detachment: "detachment", Haemorrhage: "haemorrhage", Cup: "cup"}[l.Kind]
		parts[i] = name + ":" + strconv.FormatFloat(l.Amount, 'g', -1, 64)
		if l.HasAngle {
			parts[i] += "@" + strconv.FormatFloat(l.Angle, 'g', -1, 64)
		}
	}
	return strings.Join(parts, ",")
}

// Targets are the oracle factor levels a request asks for, by factor name:
// a detachment at an angle also fixes detachment_cos and detachment_sin
// (extent·cos, extent·sin, the fundus dataset's encoding of position).
func (r Request) Targets() map[string]float64 {
	t := map[string]float64{}
	for _, l := range r {
		t[l.Kind] = l.Amount
		if l.Kind == Detachment && l.HasAngle {
			a := l.Angle * math.Pi / 180
			t["detachment_cos"] = l.Amount * math.Cos(a)
			t["detachment_sin"] = l.Amount * math.Sin(a)
		}
	}
	return t
}

// Shard is part I of N of a seed range.
type Shard struct{ I, N int }

// ParseShard reads "i/N" (0 ≤ i < N); "" is the whole range, 0/1.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{0, 1}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("--shard %q: want i/N, e.g. 0/4", s)
	}
	if n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("--shard %q: need 0 ≤ i < N and N ≥ 1", s)
	}
	return Shard{i, n}, nil
}

// Range is the part [lo, hi) of cases 0..n-1 this shard makes: contiguous,
// so the parts in order are the whole.
func (s Shard) Range(n int) (lo, hi int) {
	return s.I * n / s.N, (s.I + 1) * n / s.N
}
