"""Two processes, DDP on CPU (gloo): disjoint data, identical weights and codebooks at the end.

The script below runs as ``python script.py``; Fabric's launcher starts the second process the way
it would on a GPU node (``--devices 2 --strategy ddp``), so the multi-GPU path runs on every CI run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")

SCRIPT = textwrap.dedent("""
    import sys
    import torch
    from aemg.train import PretrainRecipe, TokenSource
    from aemg.train.config import get_config
    from aemg.train.engine import unwrap
    from aemg.train.synthetic import synthetic_recordings

    out = sys.argv[1]
    torch.set_num_threads(1)
    cfg = get_config("tiny").override(["stage1.max_steps=12", "stage2.max_steps=8", "ckpt_every=100",
                                       "data.batch_size=4"])
    src = [TokenSource("synth", "/x", "h", synthetic_recordings(n_recordings=5, n_groups=24, content_dim=12))]
    r = PretrainRecipe(cfg, src, out, accelerator="cpu", devices=2, strategy="ddp", progress=False,
                       record_seen=True)
    r.setup()
    r.train()
    r.cleanup()
    torch.save({"tokenizer": unwrap(r.tokenizer).state_dict(), "mtm": unwrap(r.mtm).state_dict(),
                "world": r.world}, f"{out}/final_rank{r.rank}.pt")
""")


@pytest.mark.slow
def test_two_process_ddp_disjoint_data_identical_weights(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    s0 = torch.load(out / "final_rank0.pt", weights_only=False)
    s1 = torch.load(out / "final_rank1.pt", weights_only=False)
    assert s0["world"] == s1["world"] == 2
    for part in ("tokenizer", "mtm"):
        for k in s0[part]:
            assert torch.equal(s0[part][k], s1[part][k]), f"{part}.{k} differs between ranks"
    cb = "quantizer.vq._codebook.embed"
    assert torch.equal(s0["tokenizer"][cb], s1["tokenizer"][cb])
    assert bool(s0["tokenizer"]["quantizer.vq._codebook.initted"])
    # the ranks trained on disjoint spans in every epoch of every stage
    seen = {}
    for r in (0, 1):
        for line in (out / f"seen_rank{r}.txt").read_text().splitlines():
            stage, epoch, *idx = map(int, line.split())
            seen.setdefault((stage, epoch, r), set()).update(idx)
    keys = {(s, e) for s, e, _ in seen}
    assert {1, 2} <= {s for s, _ in keys}
    for s, e in keys:
        assert seen[(s, e, 0)] and seen[(s, e, 1)]
        assert not seen[(s, e, 0)] & seen[(s, e, 1)]
