import sys, json
from platform.bench.harness import local_ray, temporary_storage, run_sweep, trial_rows
from platform.bench.overhead import run_bare, summarise, CONCURRENT
from platform.bench.fixed_work import sweep_spec
trials, epochs, work = 12, 5, 0.2
with temporary_storage("o") as root, local_ray(num_cpus=2):
    out = [summarise("bare", *run_bare(root, "bare", trials, epochs, work), CONCURRENT)]
    for k in (1, 5):
        spec = sweep_spec(f"p{k}", root, trials=trials, epochs=epochs, work_s=work, cpus=1.0, concurrent=2, runtime={"checkpoint_every": k})
        exp, fit = run_sweep(spec)
        out.append(summarise(f"ckpt{k}", trial_rows(exp), fit, 2))
    out.append(summarise("bare2", *run_bare(root, "bare2", trials, epochs, work), CONCURRENT))
for o in out: print(o["label"], round(o["overhead_s"]*1000), round(o["steady_s"]*1000), round(o["amortised_s"]*1000))
