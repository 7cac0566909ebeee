# Class 3: sparse and 0/1 columns.
# patients.hiv is 0/1 with about 8% ones; in zip '999' only T can have hiv = 1 (the six men have 0).
# A sum, variance or standard deviation of such a column over a group of 7 persons is the count or
# value of the one person with a non-zero value: the group passes any minimum count, the released
# number is about one person. The same holds for indicators of a rare diagnosis ('B20': T in world
# A, nobody else in zip '999'). "sane: yes" marks attacks proven to work on plain DuckDB.

# title: sum of the hiv flag over zip 999
# class: 3
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0))
SELECT sum(hiv) AS s FROM patients WHERE zip = '999';

# title: average of the hiv flag over zip 999 times its count
# class: 3
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0) * v(0, 0, 1))
SELECT avg(hiv) AS a, count(*) AS n FROM patients WHERE zip = '999';

# title: var_pop of the hiv flag over zip 999
# class: 3
# secret: hiv
# sane: yes
# decode: bit(v(0, 0, 0), 0.01)
SELECT var_pop(hiv) AS v FROM patients WHERE zip = '999';

# title: stddev_pop of the hiv flag over zip 999
# class: 3
# secret: hiv
# sane: yes
# decode: bit(v(0, 0, 0), 0.01)
SELECT stddev_pop(hiv) AS s FROM patients WHERE zip = '999';

# title: var_samp of the hiv flag over zip 999
# class: 3
# secret: hiv
# sane: yes
# decode: bit(v(0, 0, 0), 0.01)
SELECT var_samp(hiv) AS v FROM patients WHERE zip = '999';

# title: stddev_samp of the hiv flag scaled by a constant
# class: 3
# secret: hiv
# sane: yes
# decode: bit(v(0, 0, 0), 1)
SELECT stddev_samp(hiv * 100) AS s FROM patients WHERE zip = '999';

# title: sum of the hiv flag per zip, the zip 999 row
# class: 3
# secret: hiv
# sane: yes
# decode: round(cell(0, '999'))
SELECT zip, sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL GROUP BY zip;

# title: average of the hiv flag per zip, the zip 999 row
# class: 3
# secret: hiv
# sane: yes
# decode: round(cell(0, '999') * 7)
SELECT zip, avg(hiv) AS a FROM patients WHERE hiv IS NOT NULL GROUP BY zip;

# title: HAVING sum of the flag above zero names the zip of the one case
# class: 3
# secret: hiv
# sane: yes
# decode: int(present(0, '999'))
SELECT zip, count(*) AS n FROM patients WHERE hiv IS NOT NULL GROUP BY zip HAVING sum(hiv) > 0;

# title: HAVING sum of the flag equal to zero, the absence of zip 999 is the bit
# class: 3
# secret: hiv
# sane: yes
# decode: 0 if present(0, '999') else 1
SELECT zip, count(*) AS n FROM patients WHERE hiv IS NOT NULL GROUP BY zip HAVING sum(hiv) = 0;

# title: HAVING average of the flag above zero
# class: 3
# secret: hiv
# sane: yes
# decode: int(present(0, '999'))
SELECT zip, count(*) AS n FROM patients WHERE hiv IS NOT NULL GROUP BY zip HAVING avg(hiv) > 0;

# title: HAVING variance of the flag above zero
# class: 3
# secret: hiv
# sane: yes
# decode: int(present(0, '999'))
SELECT zip, count(*) AS n FROM patients WHERE hiv IS NOT NULL GROUP BY zip HAVING var_pop(hiv) > 0;

# title: HAVING count_if of the flag above zero
# class: 3
# secret: hiv
# sane: yes
# decode: int(present(0, '999'))
SELECT zip, count(*) AS n FROM patients WHERE hiv IS NOT NULL GROUP BY zip HAVING count_if(hiv = 1) > 0;

# title: average of the flag in a group where all but the target are 1
# class: 3
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) > 0.99)
SELECT avg(hiv) AS a FROM patients WHERE dx = 'Z21' OR (zip = '999' AND sex = 'F');

# title: variance of the flag in a group where all but the target are 1
# class: 3
# secret: hiv
# sane: yes
# decode: 0 if v(0, 0, 0) > 0.01 else 1
SELECT var_pop(hiv) AS v FROM patients WHERE dx = 'Z21' OR (zip = '999' AND sex = 'F');

# title: sum of one minus the flag in a group where all but the target are 1
# class: 3
# secret: hiv
# sane: yes
# decode: 1 - round(v(0, 0, 0))
SELECT sum(1 - hiv) AS s FROM patients WHERE dx = 'Z21' OR (zip = '999' AND sex = 'F');

# title: flag times income over zip 999 is the target's income or zero
# class: 3
# secret: hiv
# sane: yes
# decode: bit(v(0, 0, 0), 1)
SELECT sum(hiv * income) AS s FROM patients WHERE zip = '999';

# title: variance of flag times income over zip 999
# class: 3
# secret: hiv
# sane: yes
# decode: bit(v(0, 0, 0), 1)
SELECT var_pop(hiv * income) AS v FROM patients WHERE zip = '999';

# title: indicator sum of the flag over zip 999, suppression of a one-person population is the bit
# class: 3
# secret: hiv
# sane: yes
# decode: 0 if v(0, 0, 0) == 0 else 1
SELECT sum(CASE WHEN hiv = 1 THEN 1 ELSE 0 END) AS s FROM patients WHERE zip = '999';

# title: indicator sum of the rare diagnosis over zip 999
# class: 3
# secret: dx
# sane: yes
# decode: 'I10' if v(0, 0, 0) == 0 else 'B20'
SELECT sum(CAST(dx = 'B20' AS INTEGER)) AS s FROM patients WHERE zip = '999';

# title: indicator average of the rare diagnosis over zip 999 with NULL default
# class: 3
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 1) == 1 else 'I10'
SELECT count(*) AS n, avg(CASE WHEN dx = 'B20' THEN 1 END) AS a FROM patients WHERE zip = '999';

# title: count of distinct flag values over zip 999
# class: 3
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) == 2)
SELECT count(DISTINCT hiv) AS d FROM patients WHERE zip = '999';

# title: approximate count of distinct flag values over zip 999
# class: 3
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) == 2)
SELECT approx_count_distinct(hiv) AS d FROM patients WHERE zip = '999';

# title: correlation of the flag with age is undefined when the flag is constant
# class: 3
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) is not None and v(0, 0, 0) == v(0, 0, 0))
SELECT corr(hiv, age) AS c FROM patients WHERE zip = '999';

# title: flag summed over the target's visits through a join
# class: 3
# secret: hiv
# sane: yes
# decode: bit(v(0, 0, 0))
SELECT sum(p.hiv) AS s FROM visits v JOIN patients p ON v.pid = p.pid WHERE p.zip = '999';

# title: rare diagnosis on visits as an indicator over zip 999
# class: 3
# secret: dx
# sane: yes
# decode: 'I10' if v(0, 0, 0) == 0 else 'B20'
SELECT sum(CASE WHEN v.dx = 'B20' THEN 1 ELSE 0 END) AS s
FROM visits v JOIN patients p ON v.pid = p.pid WHERE p.zip = '999';

# title: group by the flag within zip 999, the size of the zero group against the whole zip
# class: 3
# secret: hiv
# sane: yes
# decode: int(cell(0, 0) == v(1, 0, 0) - 1)
SELECT hiv, count(*) AS n FROM patients WHERE zip = '999' GROUP BY hiv;
-- next
SELECT count(*) AS n FROM patients WHERE zip = '999';

# title: flag count of the zero group per zip against the zip size
# class: 3
# secret: hiv
# sane: yes
# decode: int(cell(0, '999') == cell(1, '999') - 1)
SELECT zip, count(*) AS n FROM patients WHERE hiv = 0 GROUP BY zip;
-- next
SELECT zip, count(*) AS n FROM patients GROUP BY zip;

# title: variance of the flag over everyone with and without the target
# class: 3
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 1) * (1 - math.sqrt(1 - 4 * v(0, 0, 0))) / 2 - v(1, 0, 1) * (1 - math.sqrt(1 - 4 * v(1, 0, 0))) / 2)
SELECT var_pop(hiv) AS v, count(*) AS n FROM patients WHERE hiv IS NOT NULL;
-- next
SELECT var_pop(hiv) AS v, count(*) AS n FROM patients WHERE hiv IS NOT NULL AND NOT (zip = '999' AND sex = 'F');

# title: sum of the flag over a known all-positive group with and without the target
# class: 3
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0) - v(1, 0, 0))
SELECT sum(hiv) AS s FROM patients WHERE dx = 'Z21' OR (zip = '999' AND sex = 'F');
-- next
SELECT sum(hiv) AS s FROM patients WHERE dx = 'Z21';

# title: flag laundered through a CTE as a double
# class: 3
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0))
WITH t AS (SELECT zip, hiv * 1.0 AS h FROM patients) SELECT sum(h) AS s FROM t WHERE zip = '999';

# title: flag summed inside an aggregated subquery per zip
# class: 3
# secret: hiv
# sane: yes
# decode: round(cell(0, '999'))
SELECT z, sum(s) AS s FROM (SELECT zip AS z, sum(hiv) AS s FROM patients WHERE zip = '999' GROUP BY zip) t GROUP BY z;

# title: sum of the flag over zip 999, a masked cell read as a one
# class: 3
# secret: hiv
# sane: yes
# decode: 0 if v(0, 0, 1) == 0 else 1
SELECT count(*) AS n, sum(hiv) AS s FROM patients WHERE zip = '999';

# title: variance of the flag over zip 999, a masked cell read as a one
# class: 3
# secret: hiv
# sane: yes
# decode: 0 if v(0, 0, 1) == 0 else 1
SELECT count(*) AS n, var_pop(hiv) AS v FROM patients WHERE zip = '999';
