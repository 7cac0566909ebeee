"""English and Simplified Chinese labels for the pages; the language comes from ``?lang=`` or the browser."""

from __future__ import annotations

from typing import ClassVar

from enclave.services import i18n as services_i18n
from enclave.services.i18n import LANGUAGES, Labels, pick_language

__all__ = ["LABELS", "LANGUAGES", "Translator", "pick_language"]

LABELS: Labels = {
    "app_title": ("Export review", "导出审核"),
    "nav_mine": ("My requests", "我的申请"),
    "nav_submit": ("Submit", "提交申请"),
    "nav_review": ("Review queue", "审核队列"),
    "signed_in_as": ("Signed in as", "当前用户"),
    "language": ("中文", "English"),
    "request": ("Request", "申请"),
    "project": ("Project", "项目"),
    "requester": ("Requester", "申请人"),
    "state": ("State", "状态"),
    "waiting_on": ("Waiting on", "等待"),
    "version": ("Version", "版本"),
    "files": ("Files", "文件"),
    "file": ("File", "文件"),
    "size": ("Size (bytes)", "大小（字节）"),
    "updated": ("Updated", "更新时间"),
    "created": ("Created", "创建时间"),
    "no_requests": ("No requests.", "没有申请。"),
    "justification": ("Justification", "理由"),
    "abroad": ("The files will leave the country", "文件将出境"),
    "records": ("Records going abroad", "出境记录数"),
    "submit_title": ("Submit an export request", "提交导出申请"),
    "submit_button": ("Submit for review", "提交审核"),
    "submit_help": (
        "Upload the output files from your workspace. They are copied into the vault and checked on the "
        "server before the committee sees them.",
        "上传工作空间中的输出文件。文件将复制到数据保险库，并在委员会审核前于服务器上检查。",
    ),
    "findings": ("Check findings", "检查结果"),
    "no_findings": ("No findings.", "没有检查结果。"),
    "severity": ("Severity", "严重程度"),
    "check": ("Check", "检查项"),
    "message": ("Message", "说明"),
    "location": ("Location", "位置"),
    "failed_checks": ("Failed checks: approving needs an override reason", "未通过检查：批准需要超越理由"),
    "preview": ("Preview", "预览"),
    "preview_rows": ("first rows", "前几行"),
    "no_preview": ("No preview for this file type.", "此文件类型无预览。"),
    "votes": ("Votes", "投票"),
    "votes_hidden": (
        "Votes are hidden until every reviewer has voted or the committee has decided.",
        "在所有委员投票或委员会作出决定之前，投票内容不可见。",
    ),
    "no_votes": ("No votes yet.", "尚无投票。"),
    "reviewer": ("Reviewer", "审核人"),
    "choice": ("Vote", "投票"),
    "comment": ("Comment", "意见"),
    "override": ("Override reason", "超越理由"),
    "signature_valid": ("Signature valid", "签名有效"),
    "tally": ("Tally", "计票"),
    "vote_title": ("Your vote", "您的投票"),
    "vote_all_files": ("All files", "全部文件"),
    "vote_button": ("Cast signed vote", "提交签名投票"),
    "vote_own_key": (
        "You have registered your own signing key, so this page cannot sign for you: cast your vote with "
        "the command line, signed with your key.",
        "您已登记自己的签名密钥，本页面无法代您签名：请在命令行使用您的密钥签名投票。",
    ),
    "approve": ("Approve", "批准"),
    "reject": ("Reject", "拒绝"),
    "changes": ("Request changes", "要求修改"),
    "decision": ("Decision", "决定"),
    "release_button": ("Release to the outbox", "发布到发件箱"),
    "download_button": ("Download (zip with manifest)", "下载（含清单的 zip）"),
    "review_title": ("Requests waiting for your review", "待您审核的申请"),
    "release_title": ("Approved, waiting for release", "已批准，待发布"),
    "open": ("Open", "打开"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "error_title": ("The request could not be completed", "无法完成该请求"),
    "back": ("Back", "返回"),
    "state_draft": ("draft", "草稿"),
    "state_submitted": ("submitted", "已提交"),
    "state_checked": ("checked", "已检查"),
    "state_in_review": ("in review", "审核中"),
    "state_approved": ("approved", "已批准"),
    "state_rejected": ("rejected", "已拒绝"),
    "state_changes_requested": ("changes requested", "要求修改"),
    "state_released": ("released", "已发布"),
    "state_withdrawn": ("withdrawn", "已撤回"),
}


class Translator(services_i18n.Translator):
    labels: ClassVar[Labels] = LABELS
