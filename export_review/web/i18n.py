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
    "created": ("Created", "创建时间"),
    "justification": ("Justification", "理由"),
    "abroad": ("The files will leave the country", "文件将出境"),
    "records": ("Records going abroad", "出境记录数"),
    "submit_title": ("Submit an export request", "提交导出申请"),
    "submit_button": ("Submit for review", "提交审核"),
    "submit_help": (
        "From your workspace, right-click the file in JupyterLab's file browser and choose "
        "\u201cRequest export\u201d: the workspace sends the file itself, nothing to download or upload. "
        "This form is for files you hold outside the enclave (for example a revised figure legend). "
        "Either way the files are copied into the vault and checked on the server before the committee "
        "sees them.",
        "在工作空间中，请在 JupyterLab 文件浏览器中右键单击文件并选择\u201c申请导出\u201d："
        "工作空间直接发送该文件，无需下载或上传。此表单用于您在领地之外持有的文件（例如修改后的图注）。"
        "无论哪种方式，文件都会复制到数据保险库，并在委员会审核前于服务器上检查。",
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
    # -- the layout, the lists, the queue's filters and history (issue 16 item 1 A) --
    "skip_to_content": ("Skip to the content", "跳到正文"),
    "nav_label": ("Export review", "导出审核导航"),
    "on_this_page": ("On this page", "本页内容"),
    "age": ("Age", "时长"),
    "age_today": ("today", "今天"),
    "age_one_day": ("1 day", "1 天"),
    "age_days": ("{n} days", "{n} 天"),
    "waiting_requester": ("the requester", "申请人"),
    "waiting_reviewer": ("the reviewers", "审核人"),
    "waiting_releaser": ("a releaser", "发布人"),
    "waiting_system": ("the automatic checks", "自动检查"),
    "waiting_nobody": ("nobody (closed)", "无（已结束）"),
    "mine_help": ("The export requests you submitted, newest first.", "您提交的导出申请，最新的在前。"),
    "mine_caption": ("Your requests", "您的申请"),
    "mine_empty": (
        "You have not submitted any export request yet.",
        "您尚未提交任何导出申请。",
    ),
    "review_lead": (
        "Requests waiting for your vote, those you voted on that wait for the other members, those "
        "waiting for your release, oldest first, then the history of decided requests of your projects.",
        "等待您投票的申请、您已投票且等待其他委员的申请、等待您发布的申请（最早的在前），"
        "以及您所在项目中已决定申请的历史记录。",
    ),
    "filters_title": ("Filter and search", "筛选与搜索"),
    "filter_any": ("Any", "全部"),
    "filter_age": ("Submitted", "提交时间"),
    "age_older_one": ("more than {n} day ago", "超过 {n} 天前"),
    "age_older": ("more than {n} days ago", "超过 {n} 天前"),
    "filter_search": ("Search", "搜索"),
    "filter_apply": ("Apply filters", "应用筛选"),
    "filter_clear": ("Clear filters", "清除筛选"),
    "filters_help": (
        "The filters apply to the queue and to the history. Age counts the days since the request was "
        "submitted. The search matches the request id, project, requester, file names and "
        "justification, ignoring case.",
        "筛选同时作用于审核队列和历史记录。时长按申请提交后的天数计算。搜索匹配申请编号、项目、申请人、"
        "文件名和理由，不区分大小写。",
    ),
    "filter_notice_title": ("Some filters were ignored", "部分筛选条件已忽略"),
    "queue_caption": ("Waiting for your vote", "等待您投票"),
    "queue_empty": (
        "Nothing is waiting for your vote. A request appears here once its checks are done, if you sit "
        "on its project's committee and have not yet voted on every file.",
        "没有等待您投票的申请。申请完成检查后，如果您是其项目的委员且尚未对每个文件投票，就会出现在这里。",
    ),
    "voted_title": ("You voted: waiting for the other members", "您已投票：等待其他委员"),
    "voted_caption": ("Voted by you, still in review", "您已投票，仍在审核中"),
    "voted_empty": (
        "No request you voted on is still waiting for the other members.",
        "没有您已投票且仍在等待其他委员的申请。",
    ),
    "release_caption": ("Approved, for you to release", "已批准，待您发布"),
    "release_empty": (
        "No approved request is waiting for you to release it.",
        "没有等待您发布的已批准申请。",
    ),
    "empty_filtered": (
        "No request here matches the filters.",
        "没有符合筛选条件的申请。",
    ),
    "history_title": ("History: decided requests", "历史记录：已决定的申请"),
    "history_help": (
        "Approved, rejected, changes requested, released and withdrawn requests stay here, most "
        "recently changed first.",
        "已批准、已拒绝、要求修改、已发布和已撤回的申请都保留在这里，最近变更的在前。",
    ),
    "history_caption": ("Decided requests", "已决定的申请"),
    "history_capped": (
        "Showing the {shown} most recent of {total} decided requests: refine your search to see older ones.",
        "显示 {total} 个已决定申请中最近的 {shown} 个：请缩小搜索范围以查看更早的申请。",
    ),
    "history_empty": (
        "No request of your projects has been decided yet.",
        "您所在项目中尚无已决定的申请。",
    ),
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
    "provenance": ("From a batch run", "来自批处理作业"),
    "run": ("Run", "作业"),
    "notebook": ("Notebook", "笔记本"),
    "parameters": ("Parameters", "参数"),
    "data_version": ("Data version", "数据版本"),
    "image_digest": ("Image digest", "镜像摘要"),
    "file_origin": ("Where each file came from", "各文件来源"),
    "from_run": ("From the run", "来自作业"),
    "edited_after_run": ("Edited after the run", "运行后被修改"),
    "queries": ("Queries the run made", "作业执行的查询"),
    "no_queries": ("The run made no queries.", "该作业未执行查询。"),
    "outcome": ("Outcome", "结果"),
    "at": ("At", "时间"),
    "reproduction": ("Reproducibility check", "可复现性检查"),
    "repro_pending": ("pending: the rerun has not finished", "等待中：重跑尚未完成"),
    "repro_reproduced": ("reproduced: every file is identical in the rerun", "已复现：重跑后每个文件都相同"),
    "repro_not_reproduced": ("not reproduced", "未复现"),
    "status": ("Result", "结果"),
    "reason": ("Reason", "原因"),
    "nondeterminism": ("Likely cause", "可能原因"),
    "changed_cells": ("Changed cells (row, column, before, after)", "变化的单元格（行、列、原值、新值）"),
    "reruns": ("Reruns", "重跑记录"),
    "rerun_button": ("Ask for another rerun", "申请再次重跑"),
    # -- the request page: previews, the committee rule, comparing versions (issue 16 item 1 B) --
    "row": ("Row", "行"),
    "preview_shown": ("{rows} of {total} rows shown", "显示 {rows}/{total} 行"),
    "preview_columns": ("{columns} of {total} columns", "{columns}/{total} 列"),
    "rows_skipped": ("rows not shown", "未显示的行"),
    "below_k": ("below k={k}", "小于 k={k}"),
    "finding_here": ("a check found a problem in this cell", "检查发现此单元格有问题"),
    "cell_changed": ("differs from the other version", "与另一版本不同"),
    "marked_hidden": (
        "{n} marked cells are outside the rows and columns shown: see the findings above.",
        "{n} 个标记的单元格不在显示范围内：请见上方检查结果。",
    ),
    "mark_legend": (
        "Cells the checks found are marked: a count below k (the minimum cell size) and other findings; "
        "each marked cell also says why in its text.",
        "检查发现的单元格已标记：小于 k（最小单元格数）的计数及其他问题；每个标记的单元格也以文字说明原因。",
    ),
    "svg_sanitised": (
        "Shown after sanitising on the server: scripts, links, embedded content and external images removed.",
        "已在服务器上净化后显示：已移除脚本、链接、嵌入内容和外部图片。",
    ),
    "notebook_sanitised": (
        "Rendered on the server and sanitised: no script, no embedded content, no external resources.",
        "已在服务器上渲染并净化：无脚本、无嵌入内容、无外部资源。",
    ),
    "nb_code": ("Code", "代码"),
    "nb_markdown": ("Markdown", "Markdown 文本"),
    "nb_raw": ("Raw", "原始文本"),
    "nb_image": ("Image output {ref} of {name}", "{name} 的图片输出 {ref}"),
    "nb_omitted": ("Output of a type not shown", "未显示此类型的输出"),
    "nb_truncated": ("Cut here: too long to show in full.", "内容过长，仅显示部分。"),
    "nb_more_cells": ("{n} more cells are not shown.", "另有 {n} 个单元格未显示。"),
    "committee_title": ("Committee rule", "委员会规则"),
    "committee_rule_strict": (
        "more than {n}/{d} of the {seated} seated members: {needed} approvals",
        "超过 {seated} 名在任委员的 {n}/{d}：需 {needed} 票批准",
    ),
    "committee_rule_at_least": (
        "at least {n}/{d} of the {seated} seated members: {needed} approvals",
        "至少 {seated} 名在任委员的 {n}/{d}：需 {needed} 票批准",
    ),
    "committee_rule_floor": ("(never fewer than {min})", "（不少于 {min} 票）"),
    "approvals_blind": (
        "Each file needs {needed} approvals. Votes stay hidden until every member has voted or the "
        "committee has decided, so only how many members have voted is shown.",
        "每个文件需 {needed} 票批准。在所有委员投票或委员会作出决定之前，投票内容不可见，"
        "因此只显示已投票的委员人数。",
    ),
    "members_voted": ("Members who voted", "已投票委员"),
    "approvals": ("Approvals", "批准票"),
    "approvals_needed": ("Needed", "所需票数"),
    "still_needed": ("Still needed", "尚需票数"),
    "previous_version": ("revises", "修订自"),
    "revised_by": ("revised by", "修订版本"),
    "compare_link": ("Compare with the previous version", "与上一版本比较"),
    "compare_title": ("Two versions side by side", "两个版本对照"),
    "versions": ("Compare this version with version", "将此版本与以下版本比较"),
    "back_to_request": ("Back to request", "返回申请"),
    "compare_no_preview": (
        "Only reviewers see the files' contents: this comparison shows hashes and findings.",
        "只有审核人可以查看文件内容：此比较仅显示哈希值和检查结果。",
    ),
    "file_changes": ("What changed", "变化内容"),
    "change": ("Change", "变化"),
    "changed_cell_count": ("Cells changed", "变化的单元格数"),
    "status_added": ("added", "新增"),
    "status_removed": ("removed", "已删除"),
    "status_changed": ("changed", "已修改"),
    "status_unchanged": ("unchanged", "未修改"),
    "not_in_version": ("Not in this version.", "此版本中没有该文件。"),
}


class Translator(services_i18n.Translator):
    labels: ClassVar[Labels] = LABELS
