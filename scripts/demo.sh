#!/usr/bin/env bash
# The enclave's main job on demo data: generate a synthetic cohort, register it in the catalog,
# provision a de-identified project workspace, run analyst queries through the guard, show the audit.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PATIENTS=${DEMO_PATIENTS:-20000}
export ENCLAVE_HOME=${ENCLAVE_HOME:-$PWD/demo/home}
export COLUMNS=${COLUMNS:-140}
DATA=demo/data
enclave() { "$VENV/bin/enclave" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$ENCLAVE_HOME" "$DATA" demo/outputs demo/released
step "Initialise the enclave home ($ENCLAVE_HOME) / 初始化"
ENCLAVE_ACTOR=steward enclave init

step "Generate a synthetic cohort of $PATIENTS patients / 生成合成数据"
enclave demo-data --out "$DATA" --patients "$PATIENTS" --seed 7

step "Register the datasets in the catalog / 登记数据集"
for name in patients visits labs prescriptions; do
    ENCLAVE_ACTOR=steward enclave dataset register "$DATA/$name.yaml"
done
enclave dataset list

step "Provision the demo project from its approved spec / 创建项目工作空间"
ENCLAVE_ACTOR=steward enclave project create examples/demo-project.yaml
enclave project show demo-cardio
# scripts/demo-hub.sh stops here: the analysts play the rest in their workspaces.
[ "${DEMO_SETUP_ONLY:-}" = 1 ] && exit 0

if enclave query --help >/dev/null 2>&1; then
    step "Analyst bob queries the real data through the guard / 分析人员查询"
    query() { echo; echo "bob> $1"; enclave query --project demo-cardio --user bob "$1" || true; }
    query "SELECT sex, count(*) AS patients FROM patients GROUP BY sex ORDER BY sex"
    query "SELECT age, count(DISTINCT pid) AS patients FROM patients GROUP BY age ORDER BY age"
    query "SELECT dx, count(DISTINCT pid) AS patients, round(avg(cost), 2) AS mean_cost FROM visits GROUP BY dx ORDER BY patients DESC LIMIT 10"
    query "SELECT p.sex, v.visit_type, count(DISTINCT v.pid) AS patients FROM visits v JOIN patients p ON p.pid = v.pid GROUP BY ALL ORDER BY 1, 2"
    step "A row dump is refused / 逐行导出被拒绝"
    query "SELECT * FROM patients"
fi

step "Bob asks to export a result table; the committee reviews it / 导出审核"
mkdir -p demo/outputs
enclave query --project demo-cardio --user bob --json \
    "SELECT department, count(DISTINCT pid) AS patients, round(avg(cost), 0) AS mean_cost FROM visits GROUP BY department ORDER BY department" \
    | "$VENV/bin/python" -c 'import csv, json, sys; d = json.load(sys.stdin); w = csv.writer(sys.stdout); w.writerow(d["columns"]); w.writerows(d["rows"])' \
    > demo/outputs/table1.csv
request=$(enclave export submit --project demo-cardio --user bob --justification "Table 1: patients and mean cost by department" demo/outputs/table1.csv --json \
    | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["request"])')
echo "request $request submitted; automated checks ran on the server"
echo "bob tries to approve his own request:"
enclave export vote "$request" --user bob approve || true
for reviewer in carol dave erin; do
    enclave export vote "$request" --user "$reviewer" approve
done
enclave export release "$request" --user carol
enclave export download "$request" --user bob --out demo/released
ls -l demo/released

step "The audit log / 审计日志"
enclave audit tail -n 12
enclave audit verify
