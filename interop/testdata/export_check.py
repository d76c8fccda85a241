"""Runs interop/torch/latentedit_edit.py on the cases export_test.go writes.

usage: export_check.py CASES.json OUT.json
CASES.json: [{"file": PATH, "z": [[...]], "k": [...], "t": [...]}]; OUT.json gets
[edited latents] in the same order, computed in float64.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))
import latentedit_edit  # noqa: E402

cases = json.load(open(sys.argv[1]))
out = []
for c in cases:
    e = latentedit_edit.load_editor(c["file"])
    z = torch.tensor(c["z"], dtype=torch.float32).double()
    out.append(e.edit(z, torch.tensor(c["k"]), torch.tensor(c["t"], dtype=torch.float32).double()).tolist())
json.dump(out, open(sys.argv[2], "w"))
