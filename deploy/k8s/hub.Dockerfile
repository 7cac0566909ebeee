# The hub image for deploy/k8s/values.yaml: z2jh's hub image plus the enclave (hub_config, with
# EnclaveKubeSpawner). Build from the repository root:
#   docker build -f deploy/k8s/hub.Dockerfile -t enclave/k8s-hub:latest .
FROM quay.io/jupyterhub/k8s-hub:4.4.0
COPY --chown=root:root . /opt/enclave
USER root
RUN pip install --no-cache-dir "/opt/enclave[k8s]"
USER jovyan
