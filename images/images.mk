# Included by the top-level Makefile: `make images` builds the offline base and the analyst image.
.PHONY: images images-force dockerd
dockerd:
	bash scripts/docker/start-dockerd.sh
images: setup
	VENV=$(VENV) bash images/build.sh
images-force: setup
	FORCE=1 VENV=$(VENV) bash images/build.sh
