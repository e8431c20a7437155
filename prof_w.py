import time, tempfile, shutil
from pathlib import Path
import torch
from platform.bench.fixed_work import sweep_spec
from platform.spec import SweepSpec
from platform.trial import resolve
from platform.worker import run_in_process
root = Path(tempfile.mkdtemp())
spec = sweep_spec("p", root, trials=12, epochs=5, work_s=0.0, cpus=1.0, concurrent=2)
js = spec.model_dump_json()
def t(f, n=20):
    f(); s=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-s)/n*1000
print("decode ms", t(lambda: SweepSpec.model_validate_json(js)))
sp = SweepSpec.model_validate_json(js)
print("resolve ms", t(lambda: resolve(sp, {"tag": 0.3})))
cfg, seed, fold = resolve(sp, {"tag": 0.3})
def report_nockpt(m, d): pass
def report_copy(m, d):
    if d is not None:
        dst = root / "ck" / str(time.perf_counter_ns()); shutil.copytree(d, dst)
print("run_in_process (5 epochs, 0 work, ckpt copy) ms", t(lambda: run_in_process(sp, cfg, seed=seed, fold=fold, device=torch.device("cpu"), checkpoint=None, report=report_copy, experiment_uri=str(root/"exp"), trial_id="x")))
print("run_in_process no copy ms", t(lambda: run_in_process(sp, cfg, seed=seed, fold=fold, device=torch.device("cpu"), checkpoint=None, report=report_nockpt, experiment_uri=str(root/"exp"), trial_id="x")))
sp2 = SweepSpec.model_validate_json(sp.model_copy(update={"runtime": sp.runtime.model_copy(update={"checkpoint_every": 5})}).model_dump_json())
print("run_in_process ckpt_every 5 ms", t(lambda: run_in_process(sp2, cfg, seed=seed, fold=fold, device=torch.device("cpu"), checkpoint=None, report=report_copy, experiment_uri=str(root/"exp"), trial_id="x")))
from ray import tune
d = tempfile.mkdtemp(); torch.save({"a": torch.zeros(10)}, d + "/state.pt")
print("Checkpoint.from_directory ms", t(lambda: tune.Checkpoint.from_directory(d)))
