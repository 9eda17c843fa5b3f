# The two commands of the README. Each bootstraps .venv on a fresh machine.
#   make demo   the shipped planar8 policy drives the simulated robot over ROS 2 to published goals
#   make test   ruff and mypy, then the test suite, every tier (one tier: make test ARGS='-m unit', or -m training,
#               -m ros)
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: demo test setup clean

setup: $(STAMP)

# ROS 2 launch, launch_testing and the ros2 CLI are not on PyPI. Where ../shared/ros2-launch holds their upstream
# wheels (CI, the development machines), they are installed too: --no-deps, since they name ament-index-python,
# which PyPI calls ros-ament-index-python; their PyPI dependencies are the [launch] extra. Without them the tests
# that need them skip, saying so (under CI=true they fail).
LAUNCH_WHEELS := $(wildcard ../shared/ros2-launch/wheels/*.whl)
comma := ,
EXTRAS := ros,train,dev$(if $(LAUNCH_WHEELS),$(comma)launch)

# The vendor robots (mtpolicy/robots/gr1, tiago, panda) reference the meshes robosuite ships (package://robosuite/...):
# only its files are used, never its code, so --no-deps: its own pins (mink, opencv, ...) must not replace ours.
ROBOSUITE := robosuite==1.5.2

# torch first, pinned: the CPU build of 2.13.0 (a bare `torch` would pull a multi-GB CUDA build).
$(STAMP): setup.py Makefile $(LAUNCH_WHEELS)
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[$(EXTRAS)]'
	$(VENV)/bin/pip install --quiet --no-deps $(ROBOSUITE)
	$(if $(LAUNCH_WHEELS),$(VENV)/bin/pip install --quiet --no-index --no-deps $(LAUNCH_WHEELS))
	touch $(STAMP)

demo: $(STAMP)
	MUJOCO_GL=egl $(VENV)/bin/mtpolicy demo $(ARGS)

# Lint first, each step failing the target with its own error: ruff (ruff.toml), mypy (mypy.ini: its `files` are
# the packages checked), then pytest in two workers (pytest-xdist: most ROS tests wait on events, so two run at once
# where the machine has two cores).
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	MUJOCO_GL=egl $(VENV)/bin/python -m pytest -n 2 $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
