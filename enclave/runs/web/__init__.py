"""The runs service's web side (issue 12): the JSON API a workspace calls with its server token
(``api``), the pages a browser opens through the hub login (``pages``), their labels (``i18n``) and
templates. Every rule is ``enclave.runs.service``'s; this package parses, calls and renders."""
