# The two commands of the README. Each bootstraps .venv on a fresh machine.
#   make demo   the shipped planar8 policy drives the simulated robot over ROS 2 to published goals
#   make test   the test suite
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: demo test setup clean

setup: $(STAMP)

# torch first, pinned: the CPU build of 2.13.0 (a bare `torch` would pull a multi-GB CUDA build).
$(STAMP): setup.py
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[ros,train,dev]'
	touch $(STAMP)

demo: $(STAMP)
	MUJOCO_GL=egl $(VENV)/bin/mtpolicy demo $(ARGS)

test: $(STAMP)
	MUJOCO_GL=egl $(VENV)/bin/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
