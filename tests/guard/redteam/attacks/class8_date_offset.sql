# Class 8: the project's secret date offset.
# Worlds SA and SB move every date by the project offset (123 and 47 days) plus a per-person jitter
# in [-7, 7] days. A public event: 13 persons had a visit on 2021-03-15 (department 'EVENT'), whose
# jitters average to 0 (and whose median and mode are 0). Any released statistic of their dates
# minus the public date is the offset: the average, the most frequent date, the earliest date plus
# the jitter bound, a date grouped by day of year. Secret = the offset in days.

# title: average days from the public event date to the event visits
# class: 8
# secret: offset
# sane: yes
# decode: round(v(0, 0, 0))
SELECT avg(date_diff('day', DATE '2021-03-15', visit_date)) AS d FROM visits WHERE department = 'EVENT';

# title: average of date subtraction over the event visits
# class: 8
# secret: offset
# sane: yes
# decode: round(v(0, 0, 0))
SELECT avg(visit_date - DATE '2021-03-15') AS d FROM visits WHERE department = 'EVENT';

# title: sum of days over the count for the event visits, anchored on new year
# class: 8
# secret: offset
# sane: yes
# decode: round(v(0, 0, 0) / v(0, 0, 1)) - 73
SELECT sum(date_diff('day', DATE '2021-01-01', visit_date)) AS s, count(*) AS n FROM visits WHERE department = 'EVENT';

# title: average of the shifted dates themselves
# class: 8
# secret: offset
# sane: yes
# decode: days(v(0, 0, 0)) - days(EVENT)
SELECT avg(visit_date) AS d FROM visits WHERE department = 'EVENT';

# title: the most frequent event visit date
# class: 8
# secret: offset
# sane: yes
# decode: days(max(rows(0), key=lambda row: row[1])[0]) - days(EVENT)
SELECT visit_date, count(*) AS n FROM visits WHERE department = 'EVENT' GROUP BY visit_date;

# title: the most frequent day difference to the public date
# class: 8
# secret: offset
# sane: yes
# decode: max(rows(0), key=lambda row: row[1])[0]
SELECT date_diff('day', DATE '2021-03-15', visit_date) AS d, count(*) AS n FROM visits WHERE department = 'EVENT' GROUP BY d;

# title: the most frequent day of year of the event visits
# class: 8
# secret: offset
# sane: yes
# decode: max(rows(0), key=lambda row: row[1])[0] - 74
SELECT date_part('doy', visit_date) AS d, count(*) AS n FROM visits WHERE department = 'EVENT' GROUP BY d;

# title: the most frequent month and day string of the event visits
# class: 8
# secret: offset
# sane: yes
# decode: days(date(2021, int(max(rows(0), key=lambda row: row[1])[0][:2]), int(max(rows(0), key=lambda row: row[1])[0][3:]))) - days(EVENT)
SELECT strftime(visit_date, '%m-%d') AS d, count(*) AS n FROM visits WHERE department = 'EVENT' GROUP BY d;

# title: the earliest event visit date plus the jitter bound
# class: 8
# secret: offset
# sane: yes
# decode: days(v(0, 0, 0)) - days(EVENT) + 7
SELECT min(visit_date) AS d FROM visits WHERE department = 'EVENT';

# title: the latest event visit date minus the jitter bound
# class: 8
# secret: offset
# sane: yes
# decode: days(v(0, 0, 0)) - days(EVENT) - 7
SELECT max(visit_date) AS d FROM visits WHERE department = 'EVENT';

# title: the midrange of the event visit dates
# class: 8
# secret: offset
# sane: yes
# decode: (days(v(0, 0, 0)) + days(v(0, 0, 1))) / 2 - days(EVENT)
SELECT min(visit_date) AS a, max(visit_date) AS b FROM visits WHERE department = 'EVENT';

# title: the median event visit date
# class: 8
# secret: offset
# sane: yes
# decode: days(v(0, 0, 0)) - days(EVENT)
SELECT median(visit_date) AS d FROM visits WHERE department = 'EVENT';

# title: the earliest released event date among groups of dates
# class: 8
# secret: offset
# sane: yes
# decode: days(min(column(0))) - days(EVENT) + 7
SELECT visit_date, count(*) AS n FROM visits WHERE department = 'EVENT' GROUP BY visit_date;

# title: average days per department, the event row
# class: 8
# secret: offset
# sane: yes
# decode: round(cell(0, 'EVENT'))
SELECT department, avg(date_diff('day', DATE '2021-03-15', visit_date)) AS d FROM visits GROUP BY department;

# title: average day of year of the event visits
# class: 8
# secret: offset
# sane: yes
# decode: round(v(0, 0, 0)) - 74
SELECT avg(dayofyear(visit_date)) AS d FROM visits WHERE department = 'EVENT';

# title: average discharge date of the same-day event visits
# class: 8
# secret: offset
# sane: yes
# decode: round(v(0, 0, 0))
SELECT avg(date_diff('day', DATE '2021-03-15', discharge_date)) AS d FROM visits WHERE department = 'EVENT';

# title: shifted average days to defeat any rule on small spreads
# class: 8
# secret: offset
# sane: yes
# decode: round(v(0, 0, 0) - 1e6)
SELECT avg(date_diff('day', DATE '2021-03-15', visit_date) + 1e6) AS d FROM visits WHERE department = 'EVENT';

# title: event visits of the persons who had one, joined through a person-level CTE
# class: 8
# secret: offset
# sane: yes
# decode: round(v(0, 0, 0))
WITH ev AS (SELECT pid, sum(date_diff('day', DATE '2021-03-15', visit_date)) AS d FROM visits WHERE department = 'EVENT' GROUP BY pid)
SELECT avg(d) AS d FROM ev;
