#!/usr/bin/env bash
# The enclave's main job on demo data, the whole way: generate a synthetic cohort and register it in
# the catalog; give the governance staff their roles; the PI files a data-use application, the Office
# pre-reviews it, the committee (and, for level-4 data, the security administrator) votes and
# countersigns, the PI e-signs the data-use agreement, and the steward provisions the de-identified
# project workspace from the approved application; then analyst queries through the guard, an export
# through review, and the audit log (with the security auditor's search).
#   DEMO_PATIENTS (20000)  DEMO_DIR (demo: data, outputs)  ENCLAVE_HOME ($DEMO_DIR/home)
#   DEMO_SETUP_ONLY=1      stop once the project is provisioned (scripts/demo-hub.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PATIENTS=${DEMO_PATIENTS:-20000}
DEMO_DIR=${DEMO_DIR:-demo}
export ENCLAVE_HOME=${ENCLAVE_HOME:-$(mkdir -p "$DEMO_DIR" && cd "$DEMO_DIR" && pwd)/home}
export COLUMNS=${COLUMNS:-140}
DATA=$DEMO_DIR/data
FORM=examples/applications/demo-application.yaml
PI=alice
OFFICE=olivia                 # Data Security Work Office: pre-review (R-ROLE-3)
COMMITTEE=(carol dave erin)   # Data Security Committee: votes on applications, reviews the exports
STEWARD=sam                   # provisions projects, records agreements, releases exports
SECURITY_ADMIN=sean           # level-4 data also needs the security administrator's approval (R-APP-11)
AUDITOR=audrey                # read-only audit search (R-ROLE-4)
enclave() { "$VENV/bin/enclave" "$@"; }
py() { "$VENV/bin/python" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
field() { py -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

rm -rf "$ENCLAVE_HOME" "$DATA" "$DEMO_DIR/outputs" "$DEMO_DIR/released" "$DEMO_DIR/application.yaml"
mkdir -p "$DEMO_DIR"
step "Initialise the enclave home ($ENCLAVE_HOME) / 初始化"
ENCLAVE_ACTOR=steward enclave init

step "Generate a synthetic cohort of $PATIENTS patients / 生成合成数据"
enclave demo-data --out "$DATA" --patients "$PATIENTS" --seed 7

step "Register the datasets in the catalog / 登记数据集"
for name in patients visits labs prescriptions; do
    ENCLAVE_ACTOR=$STEWARD enclave dataset register "$DATA/$name.yaml"
done
enclave dataset list

step "The governance staff and their roles / 治理人员与角色"
enclave account role grant "$SECURITY_ADMIN" security_admin --user admin
enclave account role grant "$OFFICE" office --user "$SECURITY_ADMIN"
for member in "${COMMITTEE[@]}"; do
    enclave account role grant "$member" committee --user "$SECURITY_ADMIN"
done
enclave account role grant "$STEWARD" steward --user "$SECURITY_ADMIN"
enclave account role grant "$AUDITOR" security_auditor --user "$SECURITY_ADMIN"
echo "the auditor cannot also be a steward (separation of duties, R-ROLE-4):"
enclave account role grant "$AUDITOR" steward --user "$SECURITY_ADMIN" || true
enclave account role list

step "$PI files the data-use application and submits it / 项目负责人提交数据使用申请"
# The example form as the PI wrote it, with its period of use moved to start today, so the demo
# project is usable whatever the date.
period=$(py - "$FORM" "$DEMO_DIR/application.yaml" <<'EOF'
import sys
from datetime import timedelta

import yaml

from enclave.lifecycle import enclave_today

form = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
start = enclave_today()
form["period"] = {"start": start, "end": start + timedelta(days=729)}
with open(sys.argv[2], "w", encoding="utf-8") as out:
    yaml.safe_dump(form, out, allow_unicode=True, sort_keys=False)
print(form["period"]["start"], form["period"]["end"])
EOF
)
read -r START END <<<"$period"
APP=$(enclave application file "$DEMO_DIR/application.yaml" --user "$PI" \
    --attach ethics_approval=examples/applications/ethics-approval.txt \
    --attach consent_waiver=examples/applications/consent-waiver.txt --submit --json | field id)
echo "application $APP submitted for $START to $END; the Office reviews it first"

step "The Office's pre-review: complete, forwarded to the committee / 办公室初审"
enclave application review "$APP" forward --user "$OFFICE" --checklist-all \
    --score legality_legitimacy=5 --score consistency_with_need=5 --score data_value=4 \
    --score leakage_risk=4 --score provision_cost=4 --comment "complete; minimum necessary columns"

step "The committee votes and countersigns; level-4 data needs the security administrator too / 委员会表决"
for member in "${COMMITTEE[@]}" "$SECURITY_ADMIN"; do
    enclave application vote "$APP" approve --user "$member" --comment "approved for the stated purpose"
    enclave application countersign "$APP" --user "$member"
done
state=$(enclave application show "$APP" --user "$OFFICE" --json | field state)
echo "application $APP: $state"
[ "$state" = approved ] || { echo "the application was not approved" >&2; exit 1; }

step "$PI e-signs the data-use agreement / 签署数据使用协议"
enclave agreement record "$APP" --user "$PI" --esign --start "$START" --end "$END"

step "The steward provisions the project from the approved application / 按批准的申请创建项目"
enclave project provision "$APP" --id demo-cardio --user "$STEWARD"
enclave project show demo-cardio

step "The steward approves a notebook template for batch runs / 批准批处理作业模板"
enclave run template add examples/templates/patients_by_group.ipynb --project demo-cardio \
    --name patients-by-group --title "Patients by group" --user "$STEWARD"
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
mkdir -p "$DEMO_DIR/outputs"
enclave query --project demo-cardio --user bob --json \
    "SELECT department, count(DISTINCT pid) AS patients, round(avg(cost), 0) AS mean_cost FROM visits GROUP BY department ORDER BY department" \
    | py -c 'import csv, json, sys; d = json.load(sys.stdin); w = csv.writer(sys.stdout); w.writerow(d["columns"]); w.writerows(d["rows"])' \
    > "$DEMO_DIR/outputs/table1.csv"
request=$(enclave export submit --project demo-cardio --user bob --justification "Table 1: patients and mean cost by department" "$DEMO_DIR/outputs/table1.csv" --json \
    | field request)
echo "request $request submitted; automated checks ran on the server"
echo "bob tries to approve his own request:"
enclave export vote "$request" --user bob approve || true
for reviewer in "${COMMITTEE[@]}"; do
    enclave export vote "$request" --user "$reviewer" approve
done
enclave export release "$request" --user carol
enclave export download "$request" --user bob --out "$DEMO_DIR/released"
ls -l "$DEMO_DIR/released"

step "The audit log / 审计日志"
enclave audit tail -n 12
step "The security auditor searches the application's trail / 安全审计员检索审计记录"
enclave audit search --user "$AUDITOR" --action application. --limit 40
enclave audit search --user "$AUDITOR" --project demo-cardio --csv "$DEMO_DIR/outputs/audit-demo-cardio.csv"
echo "bob is no auditor:"
enclave audit search --user bob --action export. || true
enclave audit verify
