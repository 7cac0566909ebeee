"""English and Simplified Chinese labels of the runs pages."""

from __future__ import annotations

from typing import ClassVar

from enclave.services.i18n import Labels, Translator

LABELS: Labels = {
    "app_title": ("Batch runs", "批处理作业"),
    "language": ("中文", "English"),
    "signed_in_as": ("Signed in as", "当前用户"),
    "error_title": ("The request could not be completed", "无法完成该请求"),
    "back": ("Back", "返回"),
    "none": ("None.", "无。"),
    "nav_runs": ("Runs", "作业"),
    "runs_title": ("Batch runs", "批处理作业"),
    "runs_help": (
        "Notebooks run with papermill in a fresh, locked-down workspace container, with your gateway "
        "identity. Submit one from your workspace (JupyterLab or `enclave_client.runs`).",
        "笔记本在全新且受限的工作空间容器中以 papermill 运行，使用您的网关身份。请在工作空间中提交"
        "（JupyterLab 或 `enclave_client.runs`）。",
    ),
    "no_runs": ("No runs.", "没有作业。"),
    "filter": ("Show", "筛选"),
    "all_states": ("all states", "全部状态"),
    "run": ("Run", "作业"),
    "project": ("Project", "项目"),
    "user": ("Analyst", "分析人员"),
    "kind": ("Kind", "类型"),
    "kind_run": ("run", "作业"),
    "kind_rerun": ("rerun", "重新运行"),
    "notebook": ("Notebook", "笔记本"),
    "template": ("Template", "模板"),
    "state": ("State", "状态"),
    "created_at": ("Submitted", "提交时间"),
    "started_at": ("Started", "开始时间"),
    "ended_at": ("Ended", "结束时间"),
    "progress": ("Progress", "进度"),
    "cells": ("cells", "个单元格"),
    "cancel_requested": ("cancel requested", "已请求取消"),
    "run_title": ("Run", "作业"),
    "details": ("Details", "详情"),
    "sha256": ("sha256", "sha256"),
    "image": ("Image", "镜像"),
    "image_digest": ("Image digest", "镜像摘要"),
    "data_version": ("Data version", "数据版本"),
    "timeout": ("Time limit (s)", "时间限制（秒）"),
    "rerun_of": ("Rerun of", "重新运行自"),
    "export_request": ("Export request", "导出申请"),
    "parameters": ("Parameters", "参数"),
    "no_parameters": ("No parameters.", "没有参数。"),
    "name": ("Name", "名称"),
    "value": ("Value", "值"),
    "error": ("Why it ended", "结束原因"),
    "log": ("Log", "日志"),
    "log_empty": ("Nothing logged yet.", "尚无日志。"),
    "log_tail": ("Only the end of the log is shown", "仅显示日志末尾"),
    "outputs": ("Outputs", "输出文件"),
    "no_outputs": ("No outputs.", "没有输出文件。"),
    "outputs_help": (
        "Outputs stay in the enclave: copy them into your workspace (`enclave_client.runs`) or ask "
        "for their export (export review).",
        "输出文件保留在领地内：可复制到您的工作空间（`enclave_client.runs`），或申请导出（导出审核）。",
    ),
    "size": ("Size (bytes)", "大小（字节）"),
    "executed": ("Executed notebook", "已执行的笔记本"),
    "queries": ("Queries", "查询"),
    "no_queries": ("No queries.", "没有查询。"),
    "query_id": ("Query", "查询"),
    "outcome": ("Outcome", "结果"),
    "at": ("When", "时间"),
    "sql": ("SQL", "SQL"),
    "reproduction": ("Reproduction check", "可重复性检查"),
    "cancel": ("Cancel the run", "取消作业"),
    "refreshing": (
        "This page reloads every few seconds while the run is not finished.",
        "作业未结束时，本页面每隔几秒自动刷新。",
    ),
    "state_queued": ("queued", "排队中"),
    "state_running": ("running", "运行中"),
    "state_succeeded": ("succeeded", "成功"),
    "state_failed": ("failed", "失败"),
    "state_timed_out": ("timed out", "超时"),
    "state_cancelled": ("cancelled", "已取消"),
    "outcome_allowed": ("allowed", "允许"),
    "outcome_rejected": ("rejected", "拒绝"),
    "outcome_failed": ("failed", "失败"),
}


class RunsTranslator(Translator):
    labels: ClassVar[Labels] = LABELS

    def kind(self, kind: str) -> str:
        return self.labelled("kind", kind)

    def outcome(self, outcome: str) -> str:
        return self.labelled("outcome", outcome)
