# Class 1: nonlinear isolation through derived columns.
# The target T (zip '999', sex 'F') has the largest income in both worlds (987654 in A, 123456 in B;
# everyone else earns less than 60000). A high power of income is T's alone: x^32 of the next person
# is 1e-10 of T's. Each power is built one product at a time in a chain of CTEs, so that every step
# looks like a plain value with one multiplication. Variance, standard deviation and correlation are
# not sums or averages, so a dominance rule written for sum/avg never looks at them.
# NULL incomes (three persons) are filtered out so that no NULL population trips the minimum count.

# title: var_pop of income^16 built by chained squares
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0) ** 2 / (v(0, 0, 0) - 1), 32)
WITH a AS (SELECT income * income AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c)
SELECT count(*) AS n, var_pop(x16) AS v FROM d;

# title: stddev_pop of income^16 built by chained squares
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) ** 2 * v(0, 0, 0) ** 2 / (v(0, 0, 0) - 1), 32)
WITH a AS (SELECT income * income AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c)
SELECT count(*) AS n, stddev_pop(x16) AS s FROM d;

# title: var_samp of income^16 built by chained squares
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
WITH a AS (SELECT income * income AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c)
SELECT count(*) AS n, var_samp(x16) AS v FROM d;

# title: stddev (sample) of income^16 through nested subqueries
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) ** 2 * v(0, 0, 0), 32)
SELECT count(*) AS n, stddev(x16) AS s
FROM (SELECT x8 * x8 AS x16
      FROM (SELECT x4 * x4 AS x8
            FROM (SELECT x2 * x2 AS x4
                  FROM (SELECT income * income AS x2 FROM patients WHERE income IS NOT NULL) a) b) c) d;

# title: variance of income^16 with every step a subquery in FROM and a rename
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
WITH s1 AS (SELECT income AS m FROM patients WHERE income IS NOT NULL),
s2 AS (SELECT m * m AS m FROM s1),
s3 AS (SELECT m * m AS m FROM s2),
s4 AS (SELECT m * m AS m FROM s3),
s5 AS (SELECT m * m AS m FROM s4)
SELECT count(m) AS n, variance(m) AS v FROM s5;

# title: average of income^32 over everyone
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
WITH a AS (SELECT income * income AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c),
e AS (SELECT x16 * x16 AS x32 FROM d)
SELECT count(*) AS n, avg(x32) AS m FROM e;

# title: sum of income^32 over everyone
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 0), 32)
WITH a AS (SELECT income * income AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c),
e AS (SELECT x16 * x16 AS x32 FROM d)
SELECT sum(x32) AS s FROM e;

# title: sum of income^32 per sex inside an aggregated subquery, re-summed outside
# class: 1
# secret: income
# sane: yes
# decode: root(cell(0, 'F'), 32)
WITH a AS (SELECT sex, income * income AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT sex, x2 * x2 AS x4 FROM a),
c AS (SELECT sex, x4 * x4 AS x8 FROM b),
d AS (SELECT sex, x8 * x8 AS x16 FROM c),
e AS (SELECT sex, x16 * x16 AS x32 FROM d)
SELECT g, sum(s) AS s FROM (SELECT sex AS g, sum(x32) AS s FROM e GROUP BY sex) t GROUP BY g;

# title: average of income^32 per sex with its count inside an aggregated subquery
# class: 1
# secret: income
# sane: yes
# decode: root(cell(0, 'F', col=1) * cell(0, 'F', col=2), 32)
WITH a AS (SELECT sex, income * income AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT sex, x2 * x2 AS x4 FROM a),
c AS (SELECT sex, x4 * x4 AS x8 FROM b),
d AS (SELECT sex, x8 * x8 AS x16 FROM c),
e AS (SELECT sex, x16 * x16 AS x32 FROM d)
SELECT g, sum(m) AS m, sum(n) AS n
FROM (SELECT sex AS g, avg(x32) AS m, count(*) AS n FROM e GROUP BY sex) t GROUP BY g;

# title: sum of income^32 as a scalar subquery used as a group key
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 0), 32)
WITH a AS (SELECT income * income AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c),
e AS (SELECT x16 * x16 AS x32 FROM d)
SELECT (SELECT sum(x32) FROM e) AS s, count(*) AS n FROM patients GROUP BY s;

# title: power sums of the zip 999 group solved for every member, largest root
# class: 1
# secret: income
# sane: yes
# decode: max(newton([x * 1000 ** k for k, x in enumerate(r[0][0], start=1)]))
WITH a AS (SELECT income / 1000 AS x1 FROM patients WHERE zip = '999'),
b AS (SELECT x1, x1 * x1 AS x2, x1 * x1 * x1 AS x3 FROM a),
c AS (SELECT x1, x2, x3, x2 * x2 AS x4, x2 * x3 AS x5, x3 * x3 AS x6, x3 * x3 * x1 AS x7 FROM b)
SELECT sum(x1), sum(x2), sum(x3), sum(x4), sum(x5), sum(x6), sum(x7) FROM c;

# title: power sums of the zip 999 group inside an aggregated subquery, solved
# class: 1
# secret: income
# sane: yes
# decode: max(newton([x * 1000 ** k for k, x in enumerate(r[0][0][1:], start=1)]))
WITH a AS (SELECT zip, income / 1000 AS x1 FROM patients WHERE zip = '999'),
b AS (SELECT zip, x1, x1 * x1 AS x2, x1 * x1 * x1 AS x3 FROM a),
c AS (SELECT zip, x1, x2, x3, x2 * x2 AS x4, x2 * x3 AS x5, x3 * x3 AS x6, x3 * x3 * x1 AS x7 FROM b),
g AS (SELECT zip, sum(x1) AS p1, sum(x2) AS p2, sum(x3) AS p3, sum(x4) AS p4, sum(x5) AS p5,
             sum(x6) AS p6, sum(x7) AS p7
      FROM c GROUP BY zip)
SELECT zip, sum(p1), sum(p2), sum(p3), sum(p4), sum(p5), sum(p6), sum(p7) FROM g GROUP BY zip;

# title: power sums of the zip 999 group shifted by constants above the target's, solved
# class: 1
# secret: income
# sane: yes
# decode: max(newton([(v(0, 0, k) - v(0, 0, 0) * 10 ** (3 * k + 1)) * 1000 ** k for k in range(1, 8)]))
WITH a AS (SELECT income / 1000 AS x1 FROM patients WHERE zip = '999'),
b AS (SELECT x1, x1 * x1 AS x2, x1 * x1 * x1 AS x3 FROM a),
c AS (SELECT x1, x2, x3, x2 * x2 AS x4, x2 * x3 AS x5, x3 * x3 AS x6, x3 * x3 * x1 AS x7 FROM b)
SELECT count(*) AS n, sum(x1 + 1e4), sum(x2 + 1e7), sum(x3 + 1e9 * 10), sum(x4 + 1e9 * 1e4),
       sum(x5 + 1e9 * 1e7), sum(x6 + 1e9 * 1e9 * 10), sum(x7 + 1e9 * 1e9 * 1e4)
FROM c;

# title: income^16 from a self-join on the person key, variance
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
WITH a AS (SELECT p.income * q.income AS x2 FROM patients p JOIN patients q ON p.pid = q.pid
           WHERE p.income IS NOT NULL),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c)
SELECT count(*) AS n, var_samp(x16) AS v FROM d;

# title: cubes of cubes of cubes of income in thousands, variance
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0) ** 2 / (v(0, 0, 0) - 1), 54) * 1000
WITH a AS (SELECT income / 1000 AS x FROM patients WHERE income IS NOT NULL),
b AS (SELECT x * x * x AS x3 FROM a),
c AS (SELECT x3 * x3 * x3 AS x9 FROM b),
d AS (SELECT x9 * x9 * x9 AS x27 FROM c)
SELECT count(*) AS n, var_pop(x27) AS v FROM d;

# title: squares written as (x + 1) * (x - 1) + 1 to hide the product of a column with itself
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
WITH a AS (SELECT (income + 1) * (income - 1) + 1 AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT (x2 + 1) * (x2 - 1) + 1 AS x4 FROM a),
c AS (SELECT (x4 + 1) * (x4 - 1) + 1 AS x8 FROM b),
d AS (SELECT (x8 + 1) * (x8 - 1) + 1 AS x16 FROM c)
SELECT count(*) AS n, var_samp(x16) AS v FROM d;

# title: squares through a double cast at every step
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
WITH a AS (SELECT CAST(income AS DOUBLE) * CAST(income AS DOUBLE) AS x2 FROM patients WHERE income IS NOT NULL),
b AS (SELECT CAST(x2 AS DOUBLE) * CAST(x2 AS DOUBLE) AS x4 FROM a),
c AS (SELECT CAST(x4 AS DOUBLE) * CAST(x4 AS DOUBLE) AS x8 FROM b),
d AS (SELECT CAST(x8 AS DOUBLE) * CAST(x8 AS DOUBLE) AS x16 FROM c)
SELECT count(*) AS n, var_samp(x16) AS v FROM d;

# title: income^16 through a UNION ALL with a branch of zeros
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
WITH a AS (SELECT income * income AS x2 FROM patients WHERE income IS NOT NULL
           UNION ALL SELECT 0.0 * income FROM patients WHERE income IS NOT NULL AND zip = '100'),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c)
SELECT count(*) AS n, var_samp(x16) AS v FROM d;

# title: correlation of a power spike with age reveals the target's age
# class: 1
# secret: age
# sane: yes
# decode: round(v(0, 0, 1) + v(0, 0, 3) * v(0, 0, 2) * math.sqrt(v(0, 0, 0) - 1))
WITH a AS (SELECT age, income * income AS x2 FROM patients WHERE income IS NOT NULL AND age IS NOT NULL),
b AS (SELECT age, x2 * x2 AS x4 FROM a),
c AS (SELECT age, x4 * x4 AS x8 FROM b),
d AS (SELECT age, x8 * x8 AS x16 FROM c)
SELECT count(*) AS n, avg(age) AS m, stddev_pop(age) AS s, corr(x16, age) AS r FROM d;

# title: correlation of a power spike with the hiv flag reveals the target's status
# class: 1
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 1) + v(0, 0, 3) * v(0, 0, 2) * math.sqrt(v(0, 0, 0) - 1))
WITH a AS (SELECT hiv, income * income AS x2 FROM patients WHERE income IS NOT NULL AND hiv IS NOT NULL),
b AS (SELECT hiv, x2 * x2 AS x4 FROM a),
c AS (SELECT hiv, x4 * x4 AS x8 FROM b),
d AS (SELECT hiv, x8 * x8 AS x16 FROM c)
SELECT count(*) AS n, avg(hiv) AS m, stddev_pop(hiv) AS s, corr(x16, hiv) AS r FROM d;

# title: ratio of variances of spike times age and spike alone is the target's age squared
# class: 1
# secret: age
# sane: yes
# decode: round(math.sqrt(v(0, 0, 1) / v(0, 0, 0)))
WITH a AS (SELECT age, income * income AS x2 FROM patients WHERE income IS NOT NULL AND age IS NOT NULL),
b AS (SELECT age, x2 * x2 AS x4 FROM a),
c AS (SELECT age, x4 * x4 AS x8 FROM b),
d AS (SELECT age, x8 * x8 AS x16 FROM c)
SELECT var_pop(x16) AS a, var_pop(x16 * age) AS b FROM d;

# title: ratio of variances of spike times hiv and spike alone is the target's hiv
# class: 1
# secret: hiv
# sane: yes
# decode: round(v(0, 0, 1) / v(0, 0, 0))
WITH a AS (SELECT hiv, income * income AS x2 FROM patients WHERE income IS NOT NULL AND hiv IS NOT NULL),
b AS (SELECT hiv, x2 * x2 AS x4 FROM a),
c AS (SELECT hiv, x4 * x4 AS x8 FROM b),
d AS (SELECT hiv, x8 * x8 AS x16 FROM c)
SELECT var_pop(x16) AS a, var_pop(x16 * hiv) AS b FROM d;

# title: spike times age inside the zip 999 group, stddev ratio
# class: 1
# secret: age
# sane: yes
# decode: round(v(0, 0, 1) / v(0, 0, 0))
WITH a AS (SELECT age, income * income AS x2 FROM patients WHERE zip = '999'),
b AS (SELECT age, x2 * x2 AS x4 FROM a),
c AS (SELECT age, x4 * x4 AS x8 FROM b)
SELECT stddev_pop(x8 * x8) AS a, stddev_pop(x8 * x8 * age) AS b FROM c;

# title: greatest() turns income into a column that is zero for everyone but the target
# class: 1
# secret: income
# sane: yes
# decode: v(0, 0, 0) + 100000
SELECT sum(greatest(income - 100000, 0)) AS s FROM patients;

# title: least() in a CTE keeps only the excess over a threshold
# class: 1
# secret: income
# sane: yes
# decode: v(0, 0, 0) + 100000
WITH t AS (SELECT income - least(income, 100000) AS excess FROM patients WHERE income IS NOT NULL)
SELECT sum(excess) AS s FROM t;

# title: abs() builds a rectifier: (x - c + |x - c|) / 2
# class: 1
# secret: income
# sane: yes
# decode: v(0, 0, 0) + 100000
WITH t AS (SELECT (income - 100000 + abs(income - 100000)) / 2 AS excess FROM patients WHERE income IS NOT NULL)
SELECT sum(excess) AS s FROM t;

# title: CASE keeps only incomes above a threshold
# class: 1
# secret: income
# sane: yes
# decode: v(0, 0, 0)
SELECT avg(x) * count(*) AS s FROM (SELECT CASE WHEN income > 100000 THEN income ELSE 0 END AS x FROM patients WHERE income IS NOT NULL) t;

# title: power function, variance of income^16
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
SELECT count(*) AS n, var_samp(pow(income, 16)) AS v FROM patients WHERE income IS NOT NULL;

# title: power operator, sum of income^32
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 0), 32)
SELECT sum(income ** 32) AS s FROM patients WHERE income IS NOT NULL;

# title: log-sum-exp of shifted incomes
# class: 1
# secret: income
# sane: yes
# decode: 2000 * math.log(v(0, 0, 0)) + 200000
SELECT sum(exp((income - 200000) / 2000)) AS s FROM patients WHERE income IS NOT NULL;

# title: squared deviation from a constant, built through coalesce
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
WITH a AS (SELECT coalesce(income, 0) * coalesce(income, 0) AS x2 FROM patients),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c)
SELECT count(*) AS n, var_samp(x16) AS v FROM d;

# title: per-person maximum of income in a person-level subquery, then powers
# class: 1
# secret: income
# sane: yes
# decode: root(v(0, 0, 1) * v(0, 0, 0), 32)
WITH pp AS (SELECT pid, max(income) AS m FROM patients WHERE income IS NOT NULL GROUP BY pid),
a AS (SELECT m * m AS x2 FROM pp),
b AS (SELECT x2 * x2 AS x4 FROM a),
c AS (SELECT x4 * x4 AS x8 FROM b),
d AS (SELECT x8 * x8 AS x16 FROM c)
SELECT count(*) AS n, var_samp(x16) AS v FROM d;

# title: spike variance of a power of the hiv-weighted income
# class: 1
# secret: hiv
# sane: yes
# decode: int(v(0, 0, 0) > 1e170)
WITH a AS (SELECT hiv, income * income AS x2 FROM patients WHERE income IS NOT NULL AND hiv IS NOT NULL),
b AS (SELECT hiv, x2 * x2 AS x4 FROM a),
c AS (SELECT hiv, x4 * x4 AS x8 FROM b),
d AS (SELECT hiv * x8 * x8 AS h16 FROM c)
SELECT var_pop(h16) AS v FROM d;
