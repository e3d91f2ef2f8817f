"""``aemg simulate``: write a synthetic EMG gesture dataset in the generic import layout."""

from __future__ import annotations

import argparse

EPILOG = """\
The output folder holds manifest.csv, one .npy file (samples x 8 channels, float32, uV) per rest
period or gesture repetition, and simulation.json with the seed, the parameters and each subject's
true armband rotation, gains and mains frequency. Read it with `aemg import OUT` (or
aemg.datasets.generic.read_manifest). The same --seed gives byte-identical files.

Model (docs/simulator.md): 8 forearm muscles at anatomical positions, motor-unit pools with
size-principle recruitment and rate coding, biphasic MUAPs, distance-dependent volume conduction,
an 8-electrode armband (layout myo8) rotated and shifted per subject, per-channel gains, skin noise,
50/60 Hz mains, and fatigue (MUAP widening and growth) across the session. Calibrated on real EMG
(aemg.simulate.config.SimConfig): subject-specific gesture templates and contraction intensity,
residual activity and stray contractions at rest, motion artefacts, baseline wander and an
occasional bad channel, so that the contraction-to-rest energy ratio and the cross-subject gap
are like the real datasets' (docs/simulator.md, "Calibration against real EMG").

example:
  aemg simulate --out sim --subjects 4 --seed 0
  aemg simulate --out sim200 --subjects 2 --fs 200 --gestures rest,hand_close,pronation,supination
"""


def register(sub: argparse._SubParsersAction) -> None:
    from aemg.simulate._names import DEFAULT_GESTURES, SIMULATED_GESTURES

    p = sub.add_parser("simulate", help="write a synthetic, physiologically grounded EMG dataset",
                       description="Simulate forearm surface EMG of hand and wrist gestures recorded by an "
                                   "8-electrode armband, and write it as a dataset `aemg import` reads.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created; must be empty unless --overwrite)")
    p.add_argument("--subjects", type=int, default=4, metavar="N", help="number of simulated subjects (default: 4)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed; same seed, same files (default: 0)")
    p.add_argument("--reps", type=int, default=3, metavar="R",
                   help="repetitions of each gesture per subject (default: 3)")
    p.add_argument("--fs", type=float, default=1000.0, metavar="HZ",
                   help="sampling rate of the written files in Hz (default: 1000; below 1000 the signal is "
                        "simulated at 1000 Hz and resampled with an anti-aliasing filter, as a Myo does at 200)")
    p.add_argument("--gestures", default=",".join(DEFAULT_GESTURES), metavar="LIST",
                   help=f"comma-separated gestures (default: {','.join(DEFAULT_GESTURES)}); "
                        f"available: {', '.join(SIMULATED_GESTURES)}. Without 'rest', rest periods are "
                        f"written unlabelled")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous aemg simulation in --out (only the files its simulation.json "
                        "lists; a folder without one is refused)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aemg.simulate import simulate_dataset

    gestures = [g.strip() for g in args.gestures.split(",") if g.strip()]
    manifest = simulate_dataset(args.out, n_subjects=args.subjects, seed=args.seed, fs=args.fs, gestures=gestures,
                                reps=args.reps, overwrite=args.overwrite,
                                progress=not args.no_progress)
    print(manifest)
    return 0
