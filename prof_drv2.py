import cProfile, pstats, io, tracemalloc
from platform.bench.harness import local_ray, temporary_storage, run_sweep
from platform.bench.fixed_work import sweep_spec
with temporary_storage("o") as root, local_ray(num_cpus=2):
    spec = sweep_spec("p", root, trials=300, epochs=1, work_s=0.0, cpus=1.0, concurrent=2)
    pr = cProfile.Profile(); pr.enable()
    exp, fit = run_sweep(spec)
    pr.disable()
st = pstats.Stats(pr); s = io.StringIO(); st.stream = s
st.sort_stats("tottime").print_stats(25); print(s.getvalue()[:7000])
s = io.StringIO(); st.stream = s
st.sort_stats("cumulative").print_stats("platform/", 25); print(s.getvalue()[:6000])
