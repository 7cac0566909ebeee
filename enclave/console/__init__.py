"""The steward console (issue 11): the web pages of data-use governance, a JupyterHub service.

Pages, under the service prefix (``/services/console/``), by audience:

* applicants: ``""`` my applications; ``applications/new`` the form (catalog columns, team, period,
  legal basis, attachments); ``applications/<id>`` state, history, attachments, DUA, project and the
  applicant's buttons (``edit``, ``attachments``, ``submit``, ``withdraw``, ``dua/sign``);
* the Office: ``office`` the pre-review queue; ``office/<id>`` pre-review, ``office/<id>/review``;
* the Committee: ``committee``; ``committee/<id>`` tally and vote; ``.../vote``, ``.../countersign``;
* stewards: ``steward``; ``steward/<id>`` DUA and provisioning (``.../dua``, ``.../provision``);
  ``projects`` and ``projects/<project>/<suspend|resume|expire|destroy>``, ``.../certificate``;
  ``monitoring`` alerts and locks, ``monitoring/unlock``;
* security auditors: ``audit`` and ``audit.csv``;
* scripts: ``api/me``.

``app`` is the service, ``handlers`` the routes, ``forms`` the HTML forms to the domain's input,
``views`` what the pages read, ``i18n`` the labels in English and Chinese, ``context`` what the
handlers share. No rule lives here: the domain modules decide, the console renders their answers.
"""
