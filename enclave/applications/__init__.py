"""Data-use applications (R-APP-1..12, 19, 20): the form, its life, the Office pre-review.

``form`` is the application form and its checks against the catalog; ``workflow`` the one state
enum and transition table; ``service`` filing, attachments, submission and withdrawal; ``office``
the pre-review checklist, scorecard and the applicant's history. The committee's votes and
countersignatures live in ``voting``.
"""
