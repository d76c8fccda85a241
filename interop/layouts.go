package interop

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"latentedit/generator"
	"latentedit/interop/tensorfile"
)

// A layout is the PyTorch parameters of one architecture and where each goes
// among the generator's variables. interop/torch/latentedit_models.py holds
// the PyTorch modules whose state dicts these are.

// param is one tensor of the state dict.
type param struct {
	keys  []string                      // the state-dict key, then aliases (the same tensor saved under a second module path)
	shape []int                         // its PyTorch shape
	dst   string                        // the generator variable, "/generator/scope/name"; "" for a buffer only checked
	conv  convert                       // PyTorch layout → ours
	check func(tensorfile.Tensor) error // when set, the values must pass it
}

// convert turns a PyTorch tensor (shape already checked) into our layout's
// values and shape.
type convert func(t tensorfile.Tensor) ([]float32, []int)

// same keeps a vector (biases, batch-norm parameters and statistics).
func same(t tensorfile.Tensor) ([]float32, []int) { return t.Data, t.Shape }

// convKernel turns a Conv2d weight [F, C, kh, kw] into ours [kh, kw, C, F].
func convKernel(t tensorfile.Tensor) ([]float32, []int) {
	f, c, kh, kw := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	out := make([]float32, len(t.Data))
	for o := 0; o < f; o++ {
		for i := 0; i < c; i++ {
			for y := 0; y < kh; y++ {
				for x := 0; x < kw; x++ {
					out[((y*kw+x)*c+i)*f+o] = t.Data[((o*c+i)*kh+y)*kw+x]
				}
			}
		}
	}
	return out, []int{kh, kw, c, f}
}

// denseWeight turns a Linear weight [out, in] into ours [in, out], with
// output unit perm[j] of PyTorch becoming our unit j (nil: the same order).
func denseWeight(perm []int) convert {
	return func(t tensorfile.Tensor) ([]float32, []int) {
		nOut, nIn := t.Shape[0], t.Shape[1]
		out := make([]float32, len(t.Data))
		for j := 0; j < nOut; j++ {
			src := j
			if perm != nil {
				src = perm[j]
			}
			for i := 0; i < nIn; i++ {
				out[i*nOut+j] = t.Data[src*nIn+i]
			}
		}
		return out, []int{nIn, nOut}
	}
}

// denseBias permutes a Linear bias like denseWeight's columns.
func denseBias(perm []int) convert {
	return func(t tensorfile.Tensor) ([]float32, []int) {
		out := make([]float32, len(t.Data))
		for j := range out {
			out[j] = t.Data[perm[j]]
		}
		return out, t.Shape
	}
}

// chwToHWC is the permutation that makes a dense layer's output, viewed in
// PyTorch as [C, s, s], come out in our [s, s, C] order: our unit
// (y·s+x)·C+c is PyTorch's unit c·s²+y·s+x.
func chwToHWC(c, s int) []int {
	perm := make([]int, c*s*s)
	for y := 0; y < s; y++ {
		for x := 0; x < s; x++ {
			for ch := 0; ch < c; ch++ {
				perm[(y*s+x)*c+ch] = ch*s*s + y*s + x
			}
		}
	}
	return perm
}

func convParams(key, dst string, out, in, k int, aliases ...string) []param {
	return []param{
		{keys: append([]string{key + ".weight"}, suffixed(aliases, ".weight")...), shape: []int{out, in, k, k}, dst: dst + "/weights", conv: convKernel},
		{keys: append([]string{key + ".bias"}, suffixed(aliases, ".bias")...), shape: []int{out}, dst: dst + "/biases", conv: same},
	}
}

// bnParams maps a BatchNorm2d: weight, bias and the running statistics the
// imported generator normalises with (num_batches_tracked is not needed).
func bnParams(key, dst string, c int) []param {
	var ps []param
	for _, p := range [][2]string{{"weight", "scale"}, {"bias", "offset"}, {"running_mean", "mean"}, {"running_var", "variance"}} {
		ps = append(ps, param{keys: []string{key + "." + p[0]}, shape: []int{c}, dst: dst + "/" + p[1], conv: same})
	}
	return ps
}

func suffixed(keys []string, s string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + s
	}
	return out
}

// Arch names the import command takes.
const (
	ArchDCGAN      = "dcgan"
	ArchSNResNet32 = "sn_resnet32"
	ArchSNResNet64 = "sn_resnet64"
	ArchStyle      = "style"
)

// Archs lists the supported architecture names.
var Archs = []string{ArchDCGAN, ArchSNResNet32, ArchSNResNet64, ArchStyle, ArchStyleGAN2, ArchONNX}

// dcganLayout is our own generator (generator.Arch, kind dcgan) as the
// PyTorch module LatenteditDCGAN lays it out:
//
//	dense.weight [S0²·W0, L], dense.bias      Linear; output viewed [B, S0, S0, W0] then permuted to NCHW
//	up.{i}.weight [W(i), W(i-1), 3, 3], .bias  Conv2d after a nearest 2× upsample
//	to_image.weight [C, W, 3, 3], .bias
//
// Its sizes are read from the file: the latent from dense.weight, the
// number of blocks from the up.{i} keys, the base width from the last
// block, the channels from to_image, and the seed side from dense.weight's
// rows; every shape is then checked against the layout they imply.
func dcganLayout(ts map[string]tensorfile.Tensor, latent int) (generator.Arch, []param, error) {
	dw, ok1 := ts["dense.weight"]
	ti, ok2 := ts["to_image.weight"]
	ups := 0
	for {
		if _, ok := ts[fmt.Sprintf("up.%d.weight", ups)]; !ok {
			break
		}
		ups++
	}
	if !ok1 || !ok2 || ups == 0 || len(dw.Shape) != 2 || len(ti.Shape) != 4 || len(ts[fmt.Sprintf("up.%d.weight", ups-1)].Shape) != 4 {
		return generator.Arch{}, nil, fmt.Errorf("not a dcgan state dict: want dense.weight [F, L], up.0.weight … up.N.weight and to_image.weight [C, W, 3, 3]%s", keyHint(ts))
	}
	if latent != 0 && latent != dw.Shape[1] {
		return generator.Arch{}, nil, fmt.Errorf("dense.weight %v: latent dimension %d, but --latent %d was asked for", dw.Shape, dw.Shape[1], latent)
	}
	base := ts[fmt.Sprintf("up.%d.weight", ups-1)].Shape[0]
	w0 := min(base<<ups, 8*base)
	start := int(math.Round(math.Sqrt(float64(dw.Shape[0]) / float64(w0))))
	a, err := generator.NewArch(start<<ups, ti.Shape[0], base, dw.Shape[1])
	if err != nil || a.Start != start || a.Ups != ups || start*start*w0 != dw.Shape[0] {
		return a, nil, fmt.Errorf("dense.weight %v with %d up-blocks of base width %d fits no dcgan layout (the seed grid must be S0×S0×%d)", dw.Shape, ups, base, w0)
	}
	a.Kind = generator.ArchDCGAN
	width := a.Width
	f := a.Start * a.Start * width(-1)
	ps := []param{
		{keys: []string{"dense.weight"}, shape: []int{f, a.Latent}, dst: "/generator/dense/weights", conv: denseWeight(nil)},
		{keys: []string{"dense.bias"}, shape: []int{f}, dst: "/generator/dense/biases", conv: same},
	}
	for i := 0; i < a.Ups; i++ {
		ps = append(ps, convParams(fmt.Sprintf("up.%d", i), fmt.Sprintf("/generator/up%d", i), width(i), width(i-1), 3)...)
	}
	ps = append(ps, convParams("to_image", "/generator/to_image", a.Channels, width(a.Ups-1), 3)...)
	return a, ps, nil
}

// nchwToNHWC turns a [1, C, H, W] tensor (the style constant, a noise
// buffer) into ours, [1, H, W, C].
func nchwToNHWC(t tensorfile.Tensor) ([]float32, []int) {
	c, h, w := t.Shape[1], t.Shape[2], t.Shape[3]
	out := make([]float32, len(t.Data))
	for ch := 0; ch < c; ch++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				out[(y*w+x)*c+ch] = t.Data[(ch*h+y)*w+x]
			}
		}
	}
	return out, []int{1, h, w, c}
}

// count is the number of consecutive keys fmt.Sprintf(format, i) present
// from i = 0.
func count(ts map[string]tensorfile.Tensor, format string) int {
	n := 0
	for {
		if _, ok := ts[fmt.Sprintf(format, n)]; !ok {
			return n
		}
		n++
	}
}

// styleLayout is our own style generator (generator/style.go) as the
// PyTorch module LatenteditStyle lays it out:
//
//	mapping.{i}.weight [L, L], .bias             Linear + leaky ReLU, i < map depth
//	w_avg [L]                                    the running mean of w (truncation's centre)
//	const [1, W0, S0, S0]                        the learned constant (NCHW; ours is NHWC)
//	blocks.{i}.conv.weight [F, Cin, 3, 3]        modulated conv of block i (i > 0 upsamples first)
//	blocks.{i}.conv.affine.weight [Cin, L], .bias  the style of its input channels
//	blocks.{i}.conv.bias [F]                     added after the noise
//	blocks.{i}.noise_strength [], blocks.{i}.noise_const [1, 1, H, W]   with noise only
//	blocks.{i}.to_rgb.weight [C, F, 1, 1], blocks.{i}.to_rgb.affine.weight [F, L], .bias
//
// The latent, map depth, number of blocks, base width (the last block's),
// channels, seed side and noise are read from the file; every shape is then
// checked against the layout they imply. ψ is not a tensor: it comes from
// --truncation.
func styleLayout(ts map[string]tensorfile.Tensor, latent int) (generator.Arch, []param, error) {
	m0, ok1 := ts["mapping.0.weight"]
	cst, ok2 := ts["const"]
	depth, blocks := count(ts, "mapping.%d.weight"), count(ts, "blocks.%d.conv.weight")
	last, ok3 := ts[fmt.Sprintf("blocks.%d.to_rgb.weight", blocks-1)]
	if !ok1 || !ok2 || !ok3 || blocks < 3 || len(m0.Shape) != 2 || len(cst.Shape) != 4 || len(last.Shape) != 4 {
		return generator.Arch{}, nil, fmt.Errorf("not a style state dict: want mapping.0.weight [L, L], const [1, W0, S0, S0], blocks.0 … blocks.N (N ≥ 2) with conv and to_rgb%s", keyHint(ts))
	}
	if latent != 0 && latent != m0.Shape[1] {
		return generator.Arch{}, nil, fmt.Errorf("mapping.0.weight %v: latent dimension %d, but --latent %d was asked for", m0.Shape, m0.Shape[1], latent)
	}
	ups, start := blocks-1, cst.Shape[3]
	a, err := generator.NewArch(start<<ups, last.Shape[0], last.Shape[1], m0.Shape[1])
	if err != nil {
		return a, nil, fmt.Errorf("const %v with %d blocks: %w", cst.Shape, blocks, err)
	}
	if a.Start != start || a.Ups != ups {
		return a, nil, fmt.Errorf("const %v with %d blocks fits no style layout: a %d-pixel image starts from %d×%d with %d blocks", cst.Shape, blocks, a.Size, a.Start, a.Start, a.Ups+1)
	}
	a.Kind, a.MapDepth = generator.ArchStyle, depth
	_, a.Noise = ts["blocks.0.noise_strength"]
	width, l := a.Width, a.Latent
	ps := []param{
		{keys: []string{"w_avg"}, shape: []int{l}, dst: "/generator/w_avg", conv: same},
		{keys: []string{"const"}, shape: []int{1, width(-1), start, start}, dst: "/generator/const/value", conv: nchwToNHWC},
	}
	for i := 0; i < depth; i++ {
		ps = append(ps, denseParams(fmt.Sprintf("mapping.%d", i), fmt.Sprintf("/generator/map%d", i), l, l)...)
	}
	for i := 0; i <= ups; i++ {
		k, dst := fmt.Sprintf("blocks.%d", i), fmt.Sprintf("/generator/block%d", i)
		in, out, side := width(-1), width(i-1), start<<i
		if i > 0 {
			in = width(i - 2)
		}
		ps = append(ps, convParams(k+".conv", dst+"/conv", out, in, 3)...)
		ps = append(ps, denseParams(k+".conv.affine", dst+"/conv/affine", in, l)...)
		if a.Noise {
			ps = append(ps,
				param{keys: []string{k + ".noise_strength"}, shape: []int{}, dst: dst + "/noise/strength", conv: same},
				param{keys: []string{k + ".noise_const"}, shape: []int{1, 1, side, side}, dst: dst + "/noise/fixed", conv: nchwToNHWC})
		}
		ps = append(ps, param{keys: []string{k + ".to_rgb.weight"}, shape: []int{a.Channels, out, 1, 1}, dst: dst + "/to_rgb/weights", conv: convKernel})
		ps = append(ps, denseParams(k+".to_rgb.affine", dst+"/to_rgb/affine", out, l)...)
	}
	return a, ps, nil
}

// denseParams maps a Linear(in, out): weight [out, in] and bias [out].
func denseParams(key, dst string, out, in int) []param {
	return []param{
		{keys: []string{key + ".weight"}, shape: []int{out, in}, dst: dst + "/weights", conv: denseWeight(nil)},
		{keys: []string{key + ".bias"}, shape: []int{out}, dst: dst + "/biases", conv: same},
	}
}

// snResNetLayout is GANLatentDiscovery's make_resnet_generator: an
// nn.Sequential whose state dict (saved from the GenWrapper, "model."
// prefixed, or from the Sequential itself) holds
//
//	0.weight [16·W0, L], 0.bias                Linear, output viewed [B, W0, 4, 4]
//	{2+i}.model.0.*  BatchNorm2d(W(i))          block i (ResBlockGenerator)
//	{2+i}.conv1.*  = {2+i}.model.3.*           Conv2d(W(i), W(i+1), 3), after the upsample
//	{2+i}.model.4.*  BatchNorm2d(W(i+1))
//	{2+i}.conv2.*  = {2+i}.model.6.*           Conv2d(W(i+1), W(i+1), 3)
//	{2+i}.bypass.1.*                            Conv2d(W(i), W(i+1), 3), only where the width changes
//	{2+n}.*          BatchNorm2d(W(n))          n = number of blocks
//	{4+n}.weight [C, W(n), 3, 3], .bias        final Conv2d, then tanh
//
// conv1 and conv2 are saved twice (the block's attribute and its Sequential
// hold the same module); either name is accepted, and both must agree.
// The channels (1 for MNIST, 3 for AnimeFaces) are read from the final
// convolution; the latent is 128 unless asked otherwise. The widths are
// asked's when given, else read from the file (snResNetWidths) with the
// number of blocks of defaults (the --arch's: 3 for sn_resnet32, 4 for
// sn_resnet64), else — a file without those batch norms, which resolve then
// refuses by key — defaults.
func snResNetLayout(ts map[string]tensorfile.Tensor, defaults, asked []int, latent int) (generator.Arch, []param, error) {
	if latent == 0 {
		latent = 128
	}
	widths := asked
	if widths == nil {
		if widths = snResNetWidths(ts, len(defaults)-1); widths == nil {
			widths = defaults
		}
	}
	n := len(widths) - 1
	final := fmt.Sprintf("%d.weight", 4+n)
	channels := 3
	if t, ok := ts[final]; ok && len(t.Shape) == 4 {
		channels = t.Shape[0]
	}
	a, err := generator.NewSNResNet(widths, channels, latent, 0)
	if err != nil {
		return a, nil, fmt.Errorf("%s: %w", final, err)
	}
	perm := chwToHWC(widths[0], a.Start)
	f := a.Start * a.Start * widths[0]
	ps := []param{
		{keys: []string{"0.weight"}, shape: []int{f, latent}, dst: "/generator/dense/weights", conv: denseWeight(perm)},
		{keys: []string{"0.bias"}, shape: []int{f}, dst: "/generator/dense/biases", conv: denseBias(perm)},
	}
	for i := 0; i < n; i++ {
		k, dst := fmt.Sprint(2+i), fmt.Sprintf("/generator/block%d", i)
		in, out := widths[i], widths[i+1]
		ps = append(ps, bnParams(k+".model.0", dst+"/bn1", in)...)
		ps = append(ps, convParams(k+".conv1", dst+"/conv1", out, in, 3, k+".model.3")...)
		ps = append(ps, bnParams(k+".model.4", dst+"/bn2", out)...)
		ps = append(ps, convParams(k+".conv2", dst+"/conv2", out, out, 3, k+".model.6")...)
		if in != out {
			ps = append(ps, convParams(k+".bypass.1", dst+"/bypass", out, in, 3)...)
		}
	}
	ps = append(ps, bnParams(fmt.Sprint(2+n), "/generator/bn_out", widths[n])...)
	ps = append(ps, convParams(fmt.Sprint(4+n), "/generator/to_image", channels, widths[n], 3)...)
	return a, ps, nil
}

// snResNetWidths reads the channel widths W(0) … W(n) of an sn_resnet state
// dict of n blocks from its batch norms: block i's first, {2+i}.model.0,
// normalises W(i) channels, the final one, {2+n}, W(n). It returns nil when
// any of them is missing or not a vector.
func snResNetWidths(ts map[string]tensorfile.Tensor, n int) []int {
	widths := make([]int, n+1)
	for i := range widths {
		key := fmt.Sprintf("%d.model.0.weight", 2+i)
		if i == n {
			key = fmt.Sprintf("%d.weight", 2+n)
		}
		t, ok := ts[key]
		if !ok || len(t.Shape) != 1 || t.Shape[0] < 1 {
			return nil
		}
		widths[i] = t.Shape[0]
	}
	return widths
}

// keyHint lists a few of the file's keys, for an error about the wrong arch.
func keyHint(ts map[string]tensorfile.Tensor) string {
	keys := make([]string, 0, len(ts))
	for k := range ts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 6 {
		keys = append(keys[:6], "…")
	}
	return "; the file has " + strings.Join(keys, ", ")
}

// stripPrefix removes a wrapper's prefix shared by every key: "module."
// (nn.DataParallel) and then "model." (GANLatentDiscovery's GenWrapper).
func stripPrefix(ts map[string]tensorfile.Tensor) map[string]tensorfile.Tensor {
	for _, p := range []string{"module.", "model."} {
		all := len(ts) > 0
		for k := range ts {
			all = all && strings.HasPrefix(k, p)
		}
		if !all {
			continue
		}
		out := make(map[string]tensorfile.Tensor, len(ts))
		for k, t := range ts {
			out[strings.TrimPrefix(k, p)] = t
		}
		ts = out
	}
	return ts
}

// ignored are state-dict entries no generator here needs: batch norm's
// step counter.
func ignored(key string) bool { return strings.HasSuffix(key, ".num_batches_tracked") }

// resolve checks the state dict against the layout — every parameter there
// with its shape, aliases equal, no key left over — and converts each
// tensor. Errors name the keys and both shapes.
func resolve(ts map[string]tensorfile.Tensor, ps []param) (map[string]tensorfile.Tensor, error) {
	used := map[string]bool{}
	var missing []string
	out := map[string]tensorfile.Tensor{}
	for _, p := range ps {
		var found string
		for _, k := range p.keys {
			used[k] = true
			t, ok := ts[k]
			if !ok {
				continue
			}
			if !slices.Equal(t.Shape, p.shape) {
				return nil, fmt.Errorf("key %s: expected shape %v, found %v", k, p.shape, t.Shape)
			}
			if !t.IsFloat() {
				return nil, fmt.Errorf("key %s: dtype %s, want a floating-point tensor", k, t.DType)
			}
			if p.check != nil {
				if err := p.check(t); err != nil {
					return nil, fmt.Errorf("key %s: %w", k, err)
				}
			}
			if found == "" {
				found = k
			} else if !slices.Equal(t.Data, ts[found].Data) {
				return nil, fmt.Errorf("keys %s and %s name the same parameter but hold different values", found, k)
			}
		}
		if found == "" {
			missing = append(missing, p.keys[0])
			continue
		}
		if p.dst == "" {
			continue
		}
		data, shape := p.conv(ts[found])
		out[p.dst] = tensorfile.Tensor{DType: "F32", Shape: shape, Data: data}
	}
	var unknown []string
	for k := range ts {
		if !used[k] && !ignored(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	switch {
	case len(missing) > 0 && len(unknown) > 0:
		return nil, fmt.Errorf("missing keys %s; unknown keys %s (is --arch right?)", list(missing), list(unknown))
	case len(missing) > 0:
		return nil, fmt.Errorf("missing keys %s", list(missing))
	case len(unknown) > 0:
		return nil, fmt.Errorf("unknown keys %s (is --arch right?)", list(unknown))
	}
	return out, nil
}

// list joins names, at most 8 of them.
func list(names []string) string {
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + fmt.Sprintf(" and %d more", len(names)-8)
	}
	return strings.Join(names, ", ")
}
