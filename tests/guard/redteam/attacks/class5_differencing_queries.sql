# Class 5: differencing across queries of one session.
# Each query alone is a large, safe-looking aggregate; the difference of two (or three) of them is
# T alone. The filters differ by T only: AND NOT (<T's quasi-identifiers>), OR (<T>), an expression
# that becomes NULL for exactly T (NULLIF, integer division by zero, CASE), or two overlapping groups.
# A differencing ledger that remembers what a session released is what these attacks test.

# title: income total with and without AND NOT target
# class: 5
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL;
-- next
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL AND NOT (zip = '999' AND sex = 'F');

# title: income average and count with and without the target
# class: 5
# secret: income
# sane: yes
# decode: v(0, 0, 0) * v(0, 0, 1) - v(1, 0, 0) * v(1, 0, 1)
SELECT avg(income) AS a, count(*) AS n FROM patients WHERE income IS NOT NULL;
-- next
SELECT avg(income) AS a, count(*) AS n FROM patients WHERE income IS NOT NULL AND (zip <> '999' OR sex <> 'F');

# title: a large zip with OR target, minus the zip alone, income
# class: 5
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL AND (zip = '100' OR (zip = '999' AND sex = 'F'));
-- next
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL AND zip = '100';

# title: NULLIF turns the target's key into NULL, income
# class: 5
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL;
-- next
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL AND NULLIF(zip || sex, '999F') IS NOT NULL;

# title: integer division by zero only for the target, income
# class: 5
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL;
-- next
SELECT sum(income) AS s FROM patients
WHERE income IS NOT NULL AND 1 // (CASE WHEN zip = '999' AND sex = 'F' THEN 0 ELSE 1 END) = 1;

# title: CASE that is NULL for the target inside the aggregate, income
# class: 5
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL;
-- next
SELECT sum(CASE WHEN zip = '999' AND sex = 'F' THEN NULL ELSE income END) AS s FROM patients WHERE income IS NOT NULL;

# title: zip 999 against its men, age
# class: 5
# secret: age
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(age) AS s FROM patients WHERE zip = '999';
-- next
SELECT sum(age) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: everyone against everyone but the target, age
# class: 5
# secret: age
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL;
-- next
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND NOT (zip = '999' AND sex = 'F');

# title: average age and count of zip 999 and of its men
# class: 5
# secret: age
# sane: yes
# decode: round(v(0, 0, 0) * v(0, 0, 1) - v(1, 0, 0) * v(1, 0, 1))
SELECT avg(age) AS a, count(*) AS n FROM patients WHERE zip = '999';
-- next
SELECT avg(age) AS a, count(*) AS n FROM patients WHERE zip = '999' AND sex = 'M';

# title: everyone against everyone but the target, flag
# class: 5
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0) - v(1, 0, 0))
SELECT sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL;
-- next
SELECT sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL AND NOT (zip = '999' AND sex = 'F');

# title: count of flag positives with and without the target
# class: 5
# secret: hiv
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT count(*) AS n FROM patients WHERE hiv = 1;
-- next
SELECT count(*) AS n FROM patients WHERE hiv = 1 AND NOT (zip = '999' AND sex = 'F');

# title: average flag and count with and without the target
# class: 5
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0) * v(0, 0, 1) - v(1, 0, 0) * v(1, 0, 1))
SELECT avg(hiv) AS a, count(*) AS n FROM patients WHERE hiv IS NOT NULL;
-- next
SELECT avg(hiv) AS a, count(*) AS n FROM patients WHERE hiv IS NOT NULL AND zip || sex <> '999F';

# title: count per diagnosis with and without the target, the changed row
# residual: suppression-pattern
# class: 5
# secret: dx
# sane: yes
# decode: changed(0, 1)
SELECT dx, count(*) AS n FROM patients GROUP BY dx;
-- next
SELECT dx, count(*) AS n FROM patients WHERE NOT (zip = '999' AND sex = 'F') GROUP BY dx;

# title: count per diagnosis of a large zip with OR target, the changed row
# class: 5
# secret: dx
# sane: yes
# decode: changed(0, 1)
SELECT dx, count(*) AS n FROM patients WHERE zip IN ('100', '200') OR (zip = '999' AND sex = 'F') GROUP BY dx;
-- next
SELECT dx, count(*) AS n FROM patients WHERE zip IN ('100', '200') GROUP BY dx;

# title: rare diagnosis or a large zip, with and without the target
# class: 5
# secret: dx
# sane: yes
# decode: 'B20' if v(0, 0, 0) - v(1, 0, 0) == 1 else 'I10'
SELECT count(*) AS n FROM patients WHERE dx = 'B20' OR zip = '100';
-- next
SELECT count(*) AS n FROM patients WHERE (dx = 'B20' OR zip = '100') AND NOT (zip = '999' AND sex = 'F');

# title: cardiology visits per diagnosis with and without the target's visits
# class: 5
# secret: dx
# sane: yes
# decode: changed(0, 1)
SELECT dx, count(*) AS n FROM visits WHERE department = 'CARD' GROUP BY dx;
-- next
SELECT dx, count(*) AS n FROM visits
WHERE department = 'CARD' AND pid IN (SELECT pid FROM patients WHERE NOT (zip = '999' AND sex = 'F'))
GROUP BY dx;

# title: women's income against women's income with the target's group key turned NULL
# class: 5
# secret: income
# sane: yes
# decode: cell(0, 'F') - cell(1, 'F')
SELECT sex, sum(income) AS s FROM patients WHERE income IS NOT NULL GROUP BY sex;
-- next
SELECT CASE WHEN zip = '999' AND sex = 'F' THEN NULL ELSE sex END AS g, sum(income) AS s
FROM patients WHERE income IS NOT NULL GROUP BY g;

# title: integer division by zero in the group key puts the target in a NULL group
# class: 5
# secret: age
# sane: yes
# decode: v(0, 0, 0) - cell(1, 100)
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL;
-- next
SELECT 100 // (CASE WHEN zip = '999' AND sex = 'F' THEN 0 ELSE 1 END) AS g, sum(age) AS s
FROM patients WHERE age IS NOT NULL GROUP BY g;

# title: sums of squares from variance, mean and count with and without the target
# class: 5
# secret: income
# sane: yes
# decode: math.sqrt(v(0, 0, 2) * (v(0, 0, 0) + v(0, 0, 1) ** 2) - v(1, 0, 2) * (v(1, 0, 0) + v(1, 0, 1) ** 2))
SELECT var_pop(income) AS v, avg(income) AS m, count(*) AS n FROM patients WHERE income IS NOT NULL;
-- next
SELECT var_pop(income) AS v, avg(income) AS m, count(*) AS n FROM patients WHERE income IS NOT NULL AND NOT (zip = '999' AND sex = 'F');

# title: three-query tracker, two zips minus one zip minus the men of the other
# class: 5
# secret: age
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0) - v(2, 0, 0)
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND zip IN ('999', '100');
-- next
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND zip = '100';
-- next
SELECT sum(age) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: target written as a concatenation, income
# class: 5
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL;
-- next
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL AND concat(zip, sex) <> '999F';

# title: target written as ranges on zip and sex, income
# class: 5
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL;
-- next
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL AND NOT (zip > '900' AND sex < 'G');

# title: target excluded through a person-key IN subquery, income
# class: 5
# secret: income
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL;
-- next
SELECT sum(income) AS s FROM patients
WHERE income IS NOT NULL AND pid IN (SELECT pid FROM patients WHERE sex = 'M' OR zip <> '999');

# title: shifted income totals with and without the target
# class: 5
# secret: income
# sane: yes
# decode: (v(0, 0, 0) - 1e9 * v(0, 0, 1)) - (v(1, 0, 0) - 1e9 * v(1, 0, 1))
SELECT sum(income + 1e9) AS s, count(*) AS n FROM patients WHERE income IS NOT NULL;
-- next
SELECT sum(income + 1e9) AS s, count(*) AS n FROM patients WHERE income IS NOT NULL AND NOT (zip = '999' AND sex = 'F');

# title: two overlapping zip groups whose difference is the target, age
# class: 5
# secret: age
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0)
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND (zip = '999' OR zip = '200');
-- next
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND (zip = '200' OR (zip = '999' AND sex = 'M'));

# title: coalesce of NULLIF excludes only the woman of zip 999, flag
# class: 5
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 0) - v(1, 0, 0))
SELECT sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL;
-- next
SELECT sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL AND coalesce(NULLIF(zip, '999'), sex) <> 'F';

# title: per-zip age totals with and without the women, the zip 999 change
# class: 5
# secret: age
# sane: yes
# decode: cell(0, '999') - cell(1, '999')
SELECT zip, sum(age) AS s FROM patients WHERE age IS NOT NULL GROUP BY zip;
-- next
SELECT zip, sum(age) AS s FROM patients WHERE age IS NOT NULL AND sex = 'M' GROUP BY zip;

# title: per-sex flag totals with and without zip 999
# class: 5
# secret: hiv
# sane: yes
# decode: round(cell(0, 'F') - cell(1, 'F'))
SELECT sex, sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL GROUP BY sex;
-- next
SELECT sex, sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL AND zip <> '999' GROUP BY sex;

# title: visits joined to patients, the target's visit count times the flag differenced
# class: 5
# secret: hiv
# sane: yes
# decode: round((v(0, 0, 0) - v(1, 0, 0)) / (v(0, 0, 1) - v(1, 0, 1)))
SELECT sum(p.hiv) AS s, count(*) AS n FROM visits v JOIN patients p ON p.pid = v.pid WHERE p.hiv IS NOT NULL;
-- next
SELECT sum(p.hiv) AS s, count(*) AS n FROM visits v JOIN patients p ON p.pid = v.pid
WHERE p.hiv IS NOT NULL AND NOT (p.zip = '999' AND p.sex = 'F');

# title: tracker whose queries differ pairwise by whole zips, income
# class: 5
# secret: income
# sane: yes
# decode: v(1, 0, 0) - v(0, 0, 0) + v(2, 0, 0)
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL AND zip IN ('100', '200');
-- next
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL AND (zip = '200' OR (zip = '999' AND sex = 'F'));
-- next
SELECT sum(income) AS s FROM patients WHERE income IS NOT NULL AND zip = '100';

# title: tracker whose queries differ pairwise by whole zips, flag
# class: 5
# secret: hiv
# sane: yes
# decode: round(v(1, 0, 0) - v(0, 0, 0) + v(2, 0, 0))
SELECT sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL AND zip IN ('100', '200');
-- next
SELECT sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL AND (zip = '200' OR (zip = '999' AND sex = 'F'));
-- next
SELECT sum(hiv) AS s FROM patients WHERE hiv IS NOT NULL AND zip = '100';

# title: tracker whose every pairwise difference holds at least seven persons, age
# class: 5
# secret: age
# sane: yes
# decode: v(1, 0, 0) - v(0, 0, 0) + v(2, 0, 0)
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND sex = 'M';
-- next
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND ((sex = 'M' AND zip <> '999') OR (zip = '999' AND sex = 'F'));
-- next
SELECT sum(age) AS s FROM patients WHERE zip = '999' AND sex = 'M';

# title: tracker of four queries over halves of the population, age
# residual: trackers
# class: 5
# secret: age
# sane: yes
# decode: v(0, 0, 0) - v(1, 0, 0) + v(2, 0, 0) - v(3, 0, 0)
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND (zip IN ('100', '200', '300') OR (zip = '999' AND sex = 'F'));
-- next
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND zip IN ('100', '200', '300', '400');
-- next
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND zip IN ('400', '500');
-- next
SELECT sum(age) AS s FROM patients WHERE age IS NOT NULL AND zip = '500';

# title: one of the target's visits removed, the target still counted as a person
# class: 5
# secret: dx
# sane: yes
# residual: row-differencing
# decode: 'B20' if v(0, 0, 0) is not None and v(1, 0, 0) is not None and v(0, 0, 0) - v(1, 0, 0) == 1 else 'I10'
SELECT count(*) AS visits FROM visits v JOIN patients p ON p.pid = v.pid WHERE p.zip = '999';
-- next
SELECT count(*) AS visits FROM visits v JOIN patients p ON p.pid = v.pid WHERE p.zip = '999' AND NOT (p.sex = 'F' AND v.dx = 'B20');
