package interop

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
	"google.golang.org/protobuf/encoding/protowire"

	"latentedit/generator"
	"latentedit/internal/artifact"
	"latentedit/internal/atomicfile"
)

// ArchONNX is any generator exported to ONNX (torch.onnx.export), run
// through github.com/gomlx/onnx-gomlx.
const ArchONNX = generator.ArchONNX

// ONNXOps are the ONNX op types onnx-gomlx v0.4.1 converts (its
// convertNode). A graph with any other op is refused at import, every
// missing op named, before anything is converted.
var ONNXOps = []string{
	"Add", "Sub", "Mul", "Div", "Mod", "Pow", "And", "Or", "Xor", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
	"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Sqrt", "Exp", "Log", "Erf", "Relu", "Gelu",
	"FastGelu", "Abs", "Neg", "Sign", "Ceil", "Floor", "Identity", "Not", "BitwiseNot", "Tanh", "Sin", "Cos",
	"Sigmoid", "HardSwish", "IsNaN", "Reciprocal", "MatMul", "Einsum", "Clip", "Where", "Min", "Max",
	"Constant", "Gather", "GatherElements", "GatherND", "Shape", "Size", "Concat", "Softmax", "Cast",
	"Transpose", "Gemm", "Flatten", "DequantizeLinear", "QuantizeLinear", "MatMulInteger", "QLinearMatMul",
	"Squeeze", "Unsqueeze", "Slice", "Reshape", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum",
	"ReduceProd", "ReduceL2", "NonZero", "ConstantOfShape", "Expand", "Tile", "Range", "CumSum", "LSTM",
	"Conv", "AveragePool", "MaxPool", "GlobalAveragePool", "Resize", "BatchNormalization",
	"LayerNormalization", "SimplifiedLayerNormalization", "RotaryEmbedding", "MultiHeadAttention",
	"GroupQueryAttention", "Pad", "DynamicQuantizeLinear", "Split", "Trilu", "ScatterND", "If", "TopK",
	"ArgMax", "ArgMin",
}

// onnxHints say how to re-export a module whose op the converter lacks.
var onnxHints = map[string]string{
	"ConvTranspose":         "nn.ConvTranspose2d: use nn.Upsample(scale_factor=2, mode='nearest') + nn.Conv2d",
	"LeakyRelu":             "nn.LeakyReLU(a): write it as torch.maximum(x, a*x)",
	"PRelu":                 "nn.PReLU: write it as torch.maximum(x, 0) + w*torch.minimum(x, 0)",
	"Upsample":              "the deprecated Upsample op: export with opset ≥ 10 (Resize)",
	"InstanceNormalization": "nn.InstanceNorm2d: not converted",
}

// ScanONNXOps reads the op types of every node of an ONNX model (ModelProto
// bytes), sub-graphs of If/Loop included, with their counts; it parses the
// protobuf wire format directly, nothing is converted.
func ScanONNXOps(raw []byte) (map[string]int, error) {
	ops := map[string]int{}
	graph, functions := []byte(nil), 0
	err := fields(raw, func(num protowire.Number, b []byte) error {
		switch num {
		case 7: // ModelProto.graph
			graph = b
		case 25: // ModelProto.functions
			functions++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	if graph == nil {
		return nil, errors.New("not an ONNX model: no graph")
	}
	if functions > 0 {
		return nil, fmt.Errorf("the model defines %d ONNX functions, which the converter does not support", functions)
	}
	return ops, scanGraph(graph, ops, 0)
}

// scanGraph adds the op types of a GraphProto's nodes to ops.
func scanGraph(g []byte, ops map[string]int, depth int) error {
	if depth > 16 {
		return errors.New("sub-graphs nested deeper than 16")
	}
	return fields(g, func(num protowire.Number, node []byte) error {
		if num != 1 { // GraphProto.node
			return nil
		}
		var op, domain string
		err := fields(node, func(num protowire.Number, b []byte) error {
			switch num {
			case 4: // NodeProto.op_type
				op = string(b)
			case 7: // NodeProto.domain
				domain = string(b)
			case 5: // NodeProto.attribute: its graphs (If, Loop)
				return fields(b, func(num protowire.Number, sub []byte) error {
					if num == 6 || num == 11 { // AttributeProto.g, .graphs
						return scanGraph(sub, ops, depth+1)
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if domain != "" && domain != "ai.onnx" {
			op = domain + "." + op
		}
		ops[op]++
		return nil
	})
}

// fields calls fn with the number and bytes of every length-delimited field
// of a protobuf message, skipping the others.
func fields(msg []byte, fn func(protowire.Number, []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if typ == protowire.BytesType {
			b, n := protowire.ConsumeBytes(msg)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := fn(num, b); err != nil {
				return err
			}
			msg = msg[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, msg); n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
	}
	return nil
}

// checkONNXOps refuses a graph with ops the converter lacks, naming each.
func checkONNXOps(ops map[string]int) error {
	var missing []string
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		if !slices.Contains(ONNXOps, op) {
			s := fmt.Sprintf("%s (%d node", op, ops[op])
			if ops[op] > 1 {
				s += "s"
			}
			s += ")"
			if h, ok := onnxHints[op]; ok {
				s += " — " + h
			}
			missing = append(missing, s)
		}
	}
	if missing == nil {
		return nil
	}
	return fmt.Errorf("the graph uses ops the ONNX converter (onnx-gomlx v0.4.1) lacks: %s", strings.Join(missing, "; "))
}

// ParseRange reads --range "LO,HI": two finite numbers, LO < HI.
func ParseRange(s string) ([]float64, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return nil, fmt.Errorf("--range %q: want two numbers LO,HI (e.g. 0,1 or 0,255)", s)
	}
	r := make([]float64, 2)
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("--range %q: %q is not a number: want LO,HI (e.g. 0,1 or 0,255)", s, p)
		}
		r[i] = v
	}
	if err := generator.ValidateOutputRange(r); err != nil {
		return nil, fmt.Errorf("--range %q: %w", s, err)
	}
	return r, nil
}

// checkRange refuses an output range on an architecture whose tanh fixes
// [-1, 1], or a malformed one.
func checkRange(o Options) error {
	if o.Range == nil {
		return nil
	}
	if !slices.Contains(generator.RangeArchs, o.Arch) {
		return fmt.Errorf("--range %v: arch %s ends in tanh, which fixes its output to [-1, 1]; only %v take an output range", o.Range, o.Arch, generator.RangeArchs)
	}
	if err := generator.ValidateOutputRange(o.Range); err != nil {
		return fmt.Errorf("--range: %w", err)
	}
	return nil
}

// importONNX writes an ONNX generator's model directory into tmp: the file
// byte for byte as generator.ONNXFile, an empty weights checkpoint (the
// weights are the file's) and model.json, whose latent and image shape
// come from the graph's input and output.
func importONNX(o Options, tmp string) (generator.Info, error) {
	raw, err := os.ReadFile(o.From)
	if err != nil {
		return generator.Info{}, err
	}
	ops, err := ScanONNXOps(raw)
	if err != nil {
		return generator.Info{}, err
	}
	if err := checkONNXOps(ops); err != nil {
		return generator.Info{}, err
	}
	dst := filepath.Join(tmp, generator.ONNXFile)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return generator.Info{}, err
	}
	if err := atomicfile.WriteFile(dst, raw, atomicfile.DefaultPerm); err != nil {
		return generator.Info{}, err
	}
	g, err := generator.ReadONNX(dst, o.Backend, context.New())
	if err != nil {
		return generator.Info{}, err
	}
	if o.Latent != 0 && o.Latent != g.Latent {
		return generator.Info{}, fmt.Errorf("input %q takes latents of %d, but --latent %d was asked for", g.Input, g.Latent, o.Latent)
	}
	if o.Size != 0 && o.Size != g.Size {
		return generator.Info{}, fmt.Errorf("output %q makes %d-pixel images, but --size %d was asked for", g.Output, g.Size, o.Size)
	}
	sum, err := artifact.FileSHA256(dst)
	if err != nil {
		return generator.Info{}, err
	}
	cfg := generator.Default("gan", o.Dataset)
	if o.Dataset == "" {
		cfg.Dataset = "imported"
	}
	cfg.ArchKind, cfg.Size, cfg.Channels, cfg.Latent, cfg.Steps, cfg.Base = ArchONNX, g.Size, g.Channels, g.Latent, 0, 0
	cfg.OutputRange = o.Range
	if err := cfg.Validate(); err != nil {
		return generator.Info{}, err
	}
	info := generator.Info{
		Kind: "gan", LatentDim: cfg.Latent, Height: cfg.Size, Width: cfg.Size, Channels: cfg.Channels,
		Dataset: cfg.Dataset, Config: cfg, Command: o.Command,
		Source: &generator.Source{File: filepath.Base(o.From), SHA256: sum, Format: "onnx", Arch: ArchONNX},
	}
	err = generator.WriteModel(tmp, info, nil, map[string]string{"source_sha256": sum, "weights": generator.ONNXFile})
	return info, err
}
