-- GET with a Bearer token (BENCH_AUTH holds the whole header value).
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
