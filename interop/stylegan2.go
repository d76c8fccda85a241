package interop

import (
	"fmt"
	"math"
	"slices"

	"latentedit/generator"
	"latentedit/interop/tensorfile"
)

// ArchStyleGAN2 is rosinality's stylegan2-pytorch Generator (also
// GANLatentDiscovery's models/StyleGAN2/model.py).
const ArchStyleGAN2 = "stylegan2"

// stylegan2Layout is rosinality's Generator(size, style_dim, n_mlp,
// channel_multiplier) state dict (g_ema), with C(r) the channels of
// resolution 4·2^r and L the style dimension:
//
//	style.{1…n_mlp}.weight [L, L], .bias [L]      EqualLinear(lr_mul) + fused leaky ReLU (style.0 is PixelNorm)
//	input.input [1, C(0), 4, 4]                   ConstantInput
//	conv1.conv.weight [1, C(0), C(0), 3, 3]       StyledConv: ModulatedConv2d (scale 1/√(in·k²)),
//	conv1.conv.modulation.weight [C(0), L], .bias   its style (EqualLinear, bias init 1)
//	conv1.noise.weight [1], conv1.activate.bias [C(0)]   NoiseInjection, FusedLeakyReLU
//	to_rgb1.conv.weight [1, 3, C(0), 1, 1], .conv.modulation.*, to_rgb1.bias [1, 3, 1, 1]
//	convs.{2r−2}.*  (upsample: + conv.blur.kernel [4, 4]), convs.{2r−1}.*   r = 1 … log2(size)−2
//	to_rgbs.{r−1}.* (+ upsample.kernel [4, 4])
//	noises.noise_{j} [1, 1, H, W]                 j = 0 … 2·(log2(size)−2), the fixed noise
//
// The size, style dimension, n_mlp and every C(r) are read from the file
// (size, n_mlp and channel multiplier, when given, must agree); lr_mul of
// the mapping (lr_mlp, 0.01 in train.py) is not in the file. The blur
// kernels must be [1,3,3,1]'s. The equalized-learning-rate scales are
// folded into the stored weights, and the transposed convolutions' kernels
// flipped (generator/stylegan2.go).
func stylegan2Layout(ts map[string]tensorfile.Tensor, o Options) (generator.Arch, []param, error) {
	c1, ok1 := ts["conv1.conv.weight"]
	s1, ok2 := ts["style.1.weight"]
	ups := count(ts, "to_rgbs.%d.conv.weight")
	if !ok1 || !ok2 || len(c1.Shape) != 5 || len(s1.Shape) != 2 || ups == 0 {
		return generator.Arch{}, nil, fmt.Errorf("not a rosinality StyleGAN2 state dict: want style.1.weight [L, L], conv1.conv.weight [1, C, C, 3, 3], to_rgbs.0 …%s", keyHint(ts))
	}
	nMLP := 0
	for _, ok := ts[fmt.Sprintf("style.%d.weight", nMLP+1)]; ok; _, ok = ts[fmt.Sprintf("style.%d.weight", nMLP+1)] {
		nMLP++
	}
	widths := []int{c1.Shape[1]}
	for r := 1; r <= ups; r++ {
		t, ok := ts[fmt.Sprintf("convs.%d.conv.weight", 2*r-1)]
		if !ok || len(t.Shape) != 5 {
			return generator.Arch{}, nil, fmt.Errorf("missing or malformed convs.%d.conv.weight (%d to_rgbs)", 2*r-1, ups)
		}
		widths = append(widths, t.Shape[1])
	}
	l := s1.Shape[1]
	a, err := generator.NewStyleGAN2(widths, l, nMLP, 0, o.Truncation)
	if err != nil {
		return a, nil, err
	}
	switch {
	case o.Latent != 0 && o.Latent != l:
		return a, nil, fmt.Errorf("style.1.weight %v: style dimension %d, but --latent %d was asked for", s1.Shape, l, o.Latent)
	case o.Size != 0 && o.Size != a.Size:
		return a, nil, fmt.Errorf("%d to_rgbs make %d-pixel images, but --size %d was asked for", ups, a.Size, o.Size)
	case o.NMLP != 0 && o.NMLP != nMLP:
		return a, nil, fmt.Errorf("the file has %d mapping layers (style.1 … style.%d), but --n-mlp %d was asked for", nMLP, nMLP, o.NMLP)
	case o.ChannelMultiplier != 0 && !slices.Equal(widths, generator.StyleGAN2Widths(a.Size, o.ChannelMultiplier)):
		return a, nil, fmt.Errorf("channels %v by resolution, but --channel-multiplier %d means %v", widths, o.ChannelMultiplier, generator.StyleGAN2Widths(a.Size, o.ChannelMultiplier))
	}
	lr := o.LRMul
	if lr == 0 {
		lr = 0.01
	}
	ps := []param{{keys: []string{"input.input"}, shape: []int{1, widths[0], 4, 4}, dst: "/generator/const/value", conv: nchwToNHWC}}
	for i := 1; i <= nMLP; i++ {
		k, dst := fmt.Sprintf("style.%d", i), fmt.Sprintf("/generator/map%d", i-1)
		ps = append(ps,
			param{keys: []string{k + ".weight"}, shape: []int{l, l}, dst: dst + "/weights", conv: scaledDense(lr / math.Sqrt(float64(l)))},
			param{keys: []string{k + ".bias"}, shape: []int{l}, dst: dst + "/biases", conv: scaled(lr)})
	}
	// modConv maps one ModulatedConv2d and its modulation.
	modConv := func(k, dst string, out, in, ks int, up bool) []param {
		return []param{
			{keys: []string{k + ".weight"}, shape: []int{1, out, in, ks, ks}, dst: dst + "/weights", conv: modKernel(up)},
			{keys: []string{k + ".modulation.weight"}, shape: []int{in, l}, dst: dst + "/affine/weights", conv: scaledDense(1 / math.Sqrt(float64(l)))},
			{keys: []string{k + ".modulation.bias"}, shape: []int{in}, dst: dst + "/affine/biases", conv: same},
		}
	}
	styled := func(k string, j, out, in, side int, up bool) []param {
		dst := fmt.Sprintf("/generator/conv%d", j)
		ps := modConv(k+".conv", dst, out, in, 3, up)
		if up {
			ps = append(ps, blurKernel(k+".conv.blur.kernel"))
		}
		return append(ps,
			param{keys: []string{k + ".noise.weight"}, shape: []int{1}, dst: dst + "/noise/strength", conv: scalar},
			param{keys: []string{fmt.Sprintf("noises.noise_%d", j)}, shape: []int{1, 1, side, side}, dst: dst + "/noise/fixed", conv: nchwToNHWC},
			param{keys: []string{k + ".activate.bias"}, shape: []int{out}, dst: dst + "/biases", conv: same})
	}
	rgb := func(k string, r, in int) []param {
		dst := fmt.Sprintf("/generator/rgb%d", r)
		ps := append(modConv(k+".conv", dst, 3, in, 1, false),
			param{keys: []string{k + ".bias"}, shape: []int{1, 3, 1, 1}, dst: dst + "/biases", conv: flat})
		if r > 0 {
			ps = append(ps, blurKernel(k+".upsample.kernel"))
		}
		return ps
	}
	ps = append(ps, styled("conv1", 0, widths[0], widths[0], 4, false)...)
	ps = append(ps, rgb("to_rgb1", 0, widths[0])...)
	for r := 1; r <= ups; r++ {
		ps = append(ps, styled(fmt.Sprintf("convs.%d", 2*r-2), 2*r-1, widths[r], widths[r-1], 4<<r, true)...)
		ps = append(ps, styled(fmt.Sprintf("convs.%d", 2*r-1), 2*r, widths[r], widths[r], 4<<r, false)...)
		ps = append(ps, rgb(fmt.Sprintf("to_rgbs.%d", r-1), r, widths[r])...)
	}
	return a, ps, nil
}

// scaledDense is denseWeight times s: an EqualLinear's runtime scale,
// stored.
func scaledDense(s float64) convert {
	return func(t tensorfile.Tensor) ([]float32, []int) {
		data, shape := denseWeight(nil)(t)
		return scaleAll(data, s), shape
	}
}

// scaled multiplies a vector by s (an EqualLinear bias by lr_mul).
func scaled(s float64) convert {
	return func(t tensorfile.Tensor) ([]float32, []int) { return scaleAll(slices.Clone(t.Data), s), t.Shape }
}

func scaleAll(v []float32, s float64) []float32 {
	for i := range v {
		v[i] = float32(float64(v[i]) * s)
	}
	return v
}

// scalar is NoiseInjection's weight [1] as a scalar.
func scalar(t tensorfile.Tensor) ([]float32, []int) { return t.Data, []int{} }

// flat is ToRGB's bias [1, 3, 1, 1] as [3].
func flat(t tensorfile.Tensor) ([]float32, []int) { return t.Data, []int{len(t.Data)} }

// modKernel turns a ModulatedConv2d weight [1, F, C, k, k] into ours
// [k, k, C, F] times 1/√(C·k²); up flips it spatially (conv_transpose2d is
// the convolution with the flipped kernel).
func modKernel(up bool) convert {
	return func(t tensorfile.Tensor) ([]float32, []int) {
		f, c, k := t.Shape[1], t.Shape[2], t.Shape[3]
		data, shape := convKernel(tensorfile.Tensor{Shape: []int{f, c, k, k}, Data: t.Data})
		data = scaleAll(data, 1/math.Sqrt(float64(c*k*k)))
		if up {
			out := make([]float32, len(data))
			for y := 0; y < k; y++ {
				for x := 0; x < k; x++ {
					copy(out[((k-1-y)*k+(k-1-x))*c*f:][:c*f], data[(y*k+x)*c*f:][:c*f])
				}
			}
			data = out
		}
		return data, shape
	}
}

// blurKernel is a Blur or Upsample kernel buffer: checked to be make_kernel
// of [1,3,3,1] times 4 (what the generator computes), not stored.
func blurKernel(key string) param {
	return param{keys: []string{key}, shape: []int{4, 4}, check: func(t tensorfile.Tensor) error {
		taps := []float64{1, 3, 3, 1}
		for y := 0; y < 4; y++ {
			for x := 0; x < 4; x++ {
				if want := taps[y] * taps[x] / 16; math.Abs(float64(t.Data[y*4+x])-want) > 1e-6 {
					return fmt.Errorf("blur kernel value (%d, %d) is %g, want %g: only blur_kernel [1, 3, 3, 1] is supported", y, x, t.Data[y*4+x], want)
				}
			}
		}
		return nil
	}}
}
