print("client-benchmarks: not written yet")
