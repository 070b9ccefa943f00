# Every target bootstraps .venv/ itself (scripts/bootstrap.sh), so on a fresh machine
# `make demo` and `make test` are the only commands needed.
.PHONY: help venv demo study study-vision study-permutations test assignments student lab lab-solutions site explorers \
	benchmark lock clean

VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

help:
	@echo "make demo        set up .venv if needed, then run the study: python -m minis2l demo"
	@echo "make study       the full audio study on the whole SoundFont pool (<= 90 min on 2 cores),"
	@echo "                 then the image and video studies: results/, results/image, results/video"
	@echo "make study-vision  only the image and video studies (a few minutes each)"
	@echo "make study-permutations  rank against jigsaw as K grows (about 2 h on 2 cores,"
	@echo "                 resumable): results/permutations"
	@echo "make test        set up .venv if needed, then run every test (library, notebooks, lint)"
	@echo "make assignments  build the nbgrader course and student releases in assignments/"
	@echo "make lab         set up .venv if needed, build the student edition in student/ when"
	@echo "                 missing or stale (your changed notebooks are kept), open JupyterLab there"
	@echo "make lab-solutions  open JupyterLab on notebooks/ (the full notebooks, with solutions)"
	@echo "make student     (re)build the student edition: python -m minis2l student"
	@echo "make site        build the course website (executes every notebook) into docs/_build/html;"
	@echo "                 MINIS2L_FAST=1 make site for a quick build. Works offline."
	@echo "make explorers   serve the interactive explorers as an app (Voila), no JupyterLab"
	@echo "make benchmark   time soft rank (vs torchsort, torch.sort), the two heads, the data build"
	@echo "make lock        record the exact versions installed in .venv (requirements-lock.txt)"
	@echo "make clean       remove .venv and generated caches"

venv:
	@bash scripts/bootstrap.sh
	@bash scripts/offline_data.sh

demo: venv
	$(PY) -m minis2l demo --workers 2 $(DEMO_ARGS)

study: venv
	$(PY) -m minis2l demo --scale full --workers 2 --out results $(DEMO_ARGS)
	$(MAKE) study-vision

study-vision: venv
	$(PY) -m minis2l demo --modality image --workers 2 --out results/image
	$(PY) -m minis2l demo --modality video --workers 2 --out results/video

study-permutations: venv
	$(PY) -m minis2l permutations --workers 2 --out results/permutations $(PERMUTATIONS_ARGS)

# Two workers (pytest-xdist); a browser test module runs whole in one (conftest.py).
test: venv
	MINIS2L_FAST=1 $(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

assignments: venv
	$(PY) -m minis2l assignments $(ASSIGNMENTS_ARGS)

# The student edition is rebuilt when a notebook or the code that writes it is newer than its
# manifest (the command rewrites the manifest on every run), or when a notebook is missing
# from student/ (deleted to get a fresh copy).
STUDENT_MANIFEST := student/.minis2l-student.json

$(STUDENT_MANIFEST): notebooks/*.ipynb minis2l/assignments/*.py | venv
	$(PY) -m minis2l student

student: venv
	$(PY) -m minis2l student $(STUDENT_ARGS)

lab: venv $(STUDENT_MANIFEST)
	@for nb in notebooks/*.ipynb; do \
	  [ -f "student/$$(basename "$$nb")" ] || { $(PY) -m minis2l student; break; }; \
	done
	$(VENV)/bin/jupyter lab student/

lab-solutions: venv
	$(VENV)/bin/jupyter lab notebooks/

site: venv
	$(PY) docs/build.py $(SITE_ARGS)

explorers: venv
	$(PY) explorers/serve.py $(EXPLORERS_ARGS)

benchmark: venv
	$(PY) benchmarks/ranking.py
	$(PY) benchmarks/heads.py
	$(PY) benchmarks/data.py

lock: venv
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check \
	  | grep -v -E '^(torch|minis2l)==' > requirements-lock.txt

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis artifacts
