# Class 6: filtered aggregates and membership bits.
# A filtered count, bool_or, count_if or max of a flag inside a large group is one bit about the one
# person the filter can match. count(DISTINCT dx) over T plus known others tells whether T adds a new
# value. The minimum count itself is a bit when the attacker knows a group holds exactly k - 1 others
# (four other persons have dx 'B20'): the cell is released with T and suppressed without. Bits of a
# number, one query per bit, recover T's age or income exactly.

# title: count FILTER of the target with the flag, over everyone
# class: 6
# secret: hiv
# sane: yes
# decode: v(0, 0, 1)
SELECT count(*) AS n, count(*) FILTER (WHERE hiv = 1 AND zip = '999' AND sex = 'F') AS t FROM patients;

# title: count FILTER of the flag within zip 999
# class: 6
# secret: hiv
# sane: yes
# decode: v(0, 0, 1)
SELECT count(*) AS n, count(*) FILTER (WHERE hiv = 1) AS t FROM patients WHERE zip = '999';

# title: count FILTER of the rare diagnosis within zip 999
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 1) == 1 else 'I10'
SELECT count(*) AS n, count(*) FILTER (WHERE dx = 'B20') AS t FROM patients WHERE zip = '999';

# title: bool_or of the flag within zip 999
# class: 6
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0))
SELECT bool_or(hiv = 1) AS b FROM patients WHERE zip = '999';

# title: bool_or of the rare diagnosis within zip 999
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) else 'I10'
SELECT bool_or(dx = 'B20') AS b FROM patients WHERE zip = '999';

# title: bool_and of a zero flag within zip 999
# class: 6
# secret: hiv
# sane: yes
# decode: 0 if v(0, 0, 0) else 1
SELECT bool_and(hiv = 0) AS b FROM patients WHERE zip = '999';

# title: count_if of the flag within zip 999, suppression of a one-person population is the bit
# class: 6
# secret: hiv
# sane: yes
# decode: 0 if v(0, 0, 0) == 0 else 1
SELECT count_if(hiv = 1) AS c FROM patients WHERE zip = '999';

# title: count_if of the rare diagnosis within zip 999
# class: 6
# secret: dx
# sane: yes
# decode: 'I10' if v(0, 0, 0) == 0 else 'B20'
SELECT count_if(dx = 'B20') AS c FROM patients WHERE zip = '999';

# title: max of the flag within zip 999
# class: 6
# secret: hiv
# sane: yes
# decode: v(0, 0, 0)
SELECT max(hiv) AS m FROM patients WHERE zip = '999';

# title: min of one minus the flag within zip 999
# class: 6
# secret: hiv
# sane: yes
# decode: 1 - v(0, 0, 0)
SELECT min(1 - hiv) AS m FROM patients WHERE zip = '999';

# title: max of the rare-diagnosis predicate within zip 999
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) else 'I10'
SELECT max(dx = 'B20') AS m FROM patients WHERE zip = '999';

# title: min of the flag over the all-positive group plus the target
# class: 6
# secret: hiv
# sane: yes
# decode: v(0, 0, 0)
SELECT min(hiv) AS m FROM patients WHERE dx = 'Z21' OR (zip = '999' AND sex = 'F');

# title: count of distinct diagnoses over the target plus the known rare-diagnosis group
# residual: threshold
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) == 1 else 'I10'
SELECT count(DISTINCT dx) AS d FROM patients WHERE dx = 'B20' OR (zip = '999' AND sex = 'F');

# title: approximate distinct diagnoses over the target plus the known rare-diagnosis group
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) == 1 else 'I10'
SELECT approx_count_distinct(dx) AS d FROM patients WHERE dx = 'B20' OR (zip = '999' AND sex = 'F');

# title: distinct diagnoses of zip 999 against its men
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) - v(1, 0, 0) == 1 else 'I10'
SELECT count(DISTINCT dx) AS d FROM patients WHERE zip = '999';
-- next
SELECT count(DISTINCT dx) AS d FROM patients WHERE zip = '999' AND sex = 'M';

# title: distinct flag values over the all-positive group plus the target
# class: 6
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) == 1)
SELECT count(DISTINCT hiv) AS d FROM patients WHERE dx = 'Z21' OR (zip = '999' AND sex = 'F');

# title: distinct zips of the flag positives with and without the target
# class: 6
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) - v(1, 0, 0) == 1)
SELECT count(DISTINCT zip) AS d FROM patients WHERE hiv = 1;
-- next
SELECT count(DISTINCT zip) AS d FROM patients WHERE hiv = 1 AND NOT (zip = '999' AND sex = 'F');

# title: distinct zips of the rare diagnosis or a large zip
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) == 5 else 'I10'
SELECT count(DISTINCT zip) AS d FROM patients WHERE dx = 'B20' OR zip = '100';

# title: minimum count as a bit, four other persons have the rare diagnosis
# residual: threshold
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) == 5 else 'I10'
SELECT count(*) AS n FROM patients WHERE dx = 'B20';

# title: minimum count as a bit for the flag, four known positives plus the target
# residual: threshold
# class: 6
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) == 5)
SELECT count(*) AS n FROM patients WHERE hiv = 1 AND (dx = 'B20' OR (zip = '999' AND sex = 'F'));

# title: minimum count as a bit through the rare diagnosis on visits
# residual: threshold
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) == 5 else 'I10'
SELECT count(DISTINCT pid) AS n FROM visits WHERE dx = 'B20';

# title: count FILTER of the target per flag value, the group where it is one
# class: 6
# secret: hiv
# sane: yes
# decode: next(row[0] for row in rows(0) if row[2] == 1)
SELECT hiv, count(*) AS n, count(*) FILTER (WHERE zip = '999' AND sex = 'F') AS t FROM patients WHERE hiv IS NOT NULL GROUP BY hiv;

# title: count FILTER of the target per diagnosis, the group where it is one
# class: 6
# secret: dx
# sane: yes
# decode: next(row[0] for row in rows(0) if row[2] == 1)
SELECT dx, count(*) AS n, count(*) FILTER (WHERE zip = '999' AND sex = 'F') AS t FROM patients GROUP BY dx;

# title: count_if of the target per diagnosis, the suppressed group is the target's
# class: 6
# secret: dx
# sane: yes
# decode: next((row[0] for row in rows(0) if row[2] == 1), None) or ('B20' if present(0, 'I10') else 'I10')
SELECT dx, count(*) AS n, count_if(zip = '999' AND sex = 'F') AS t FROM patients GROUP BY dx;

# title: HAVING count_if of the target equal to zero, the missing diagnosis
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if present(0, 'I10') else 'I10'
SELECT dx, count(*) AS n FROM patients GROUP BY dx HAVING count_if(zip = '999' AND sex = 'F') = 0;

# title: HAVING count FILTER of the flag names the zip
# class: 6
# secret: hiv
# sane: yes
# decode: int(present(0, '999'))
SELECT zip, count(*) AS n FROM patients GROUP BY zip HAVING count(*) FILTER (WHERE hiv = 1) > 0;

# title: sum FILTER of the target's age inside the whole population
# class: 6
# secret: age
# sane: yes
# decode: v(0, 0, 1)
SELECT count(*) AS n, sum(age) FILTER (WHERE zip = '999' AND sex = 'F') AS a FROM patients;

# title: membership bits of age, a large group that includes the target when a bit is set
# class: 6
# secret: age
# sane: yes
# decode: bits([round(v(j, 0, 0) - v(7, 0, 0)) for j in range(7)])
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 1) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 2) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 4) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 8) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 16) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 32) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 64) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F');

# title: suppression bits of age at the minimum count, four known persons plus the target when a bit is set
# residual: threshold
# class: 6
# secret: age
# sane: yes
# decode: bits([int(v(j, 0, 0) == 5) for j in range(7)])
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND (age // 1) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND (age // 2) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND (age // 4) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND (age // 8) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND (age // 16) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND (age // 32) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND (age // 64) % 2 = 1);

# title: membership bits of income, twenty counts of a large group
# class: 6
# secret: income
# sane: yes
# decode: bits([round(v(j, 0, 0) - v(20, 0, 0)) for j in range(20)])
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 1) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 2) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 4) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 8) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 16) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 32) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 64) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 128) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 256) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 512) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 1024) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 2048) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 4096) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 8192) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 16384) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 32768) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 65536) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 131072) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 262144) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 524288) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F');

# title: suppression bits of income at the minimum count
# residual: threshold
# class: 6
# secret: income
# sane: yes
# decode: bits([int(v(j, 0, 0) == 5) for j in range(20)])
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 1) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 2) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 4) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 8) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 16) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 32) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 64) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 128) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 256) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 512) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 1024) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 2048) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 4096) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 8192) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 16384) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 32768) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 65536) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 131072) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 262144) % 2 = 1);
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' AND zip <> '999') OR (zip = '999' AND sex = 'F' AND floor(income / 524288) % 2 = 1);


# title: refusal pattern as bits of age, each count equal to everyone but the target unless a bit is set
# residual: suppression-pattern
# class: 6
# secret: age
# sane: yes
# decode: bits([round(v(j, 0, 0) - v(0, 0, 0)) if v(j, 0, 0) is not None else 1 for j in range(1, 8)])
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F');
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 1) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 2) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 4) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 8) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 16) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 32) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR (age // 64) % 2 = 1;

# title: refusal pattern as bits of income, twenty counts against everyone but the target
# residual: suppression-pattern
# class: 6
# secret: income
# sane: yes
# decode: bits([round(v(j, 0, 0) - v(0, 0, 0)) if v(j, 0, 0) is not None else 1 for j in range(1, 21)])
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F');
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 1) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 2) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 4) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 8) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 16) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 32) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 64) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 128) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 256) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 512) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 1024) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 2048) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 4096) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 8192) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 16384) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 32768) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 65536) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 131072) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 262144) % 2 = 1;
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR floor(income / 524288) % 2 = 1;

# title: refusal pattern as a bit, everyone but the target against the same or the rare diagnosis
# residual: suppression-pattern
# class: 6
# secret: dx
# sane: yes
# decode: 'B20' if v(1, 0, 0) is None or v(1, 0, 0) - v(0, 0, 0) == 1 else 'I10'
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F');
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR dx = 'B20';

# title: refusal pattern as a bit, everyone but the target against the same or the flag
# residual: suppression-pattern
# class: 6
# secret: hiv
# sane: yes
# decode: 1 if v(1, 0, 0) is None or v(1, 0, 0) - v(0, 0, 0) == 1 else 0
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F');
-- next
SELECT count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') OR hiv = 1;

# title: restricted count over the all-positive group plus the target, a FILTER written as CASE
# class: 6
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) is not None and v(0, 0, 0) == v(0, 0, 1))
SELECT count(CASE WHEN hiv = 1 THEN age END) AS positives, count(*) AS n FROM patients WHERE dx = 'Z21' OR (zip = '999' AND sex = 'F');

# title: restricted average over the all-positive group plus the target, released only if all are positive
# class: 6
# secret: hiv
# decode: int(v(0, 0, 0) is not None)
SELECT avg(CASE WHEN hiv = 1 THEN income END) AS a FROM patients WHERE dx = 'Z21' OR (zip = '999' AND sex = 'F');
