.PHONY: up test bench
up:        ## set up everything and run the registry with a worker (Ctrl-C stops)
	scripts/up.sh
test:      ## run the whole test suite (real PostgreSQL, Redis, Celery worker, llama.cpp)
	scripts/test.sh
bench:     ## run the benchmarks (not part of the tests)
	scripts/bootstrap.sh && for b in $(filter-out bench/shape_model.py,$(wildcard bench/*.py)); do .venv/bin/python $$b; done
