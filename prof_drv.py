import cProfile, pstats
from platform.bench.harness import local_ray, temporary_storage, run_sweep
from platform.bench.fixed_work import sweep_spec
with temporary_storage("o") as root, local_ray(num_cpus=2):
    spec = sweep_spec("p", root, trials=12, epochs=5, work_s=0.2, cpus=1.0, concurrent=2)
    pr = cProfile.Profile(); pr.enable()
    exp, fit = run_sweep(spec)
    pr.disable()
st = pstats.Stats(pr); st.sort_stats("cumulative")
import io
s = io.StringIO(); st.stream = s
st.print_stats("platform/|tune/callback|on_trial_result|_process", 40); print(s.getvalue()[:9000])
