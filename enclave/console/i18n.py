"""English and Simplified Chinese labels of the console. The domain's own labels (checklist,
scorecard, attachment kinds, DUA terms) come with the domain's data and are shown with ``t.pair``."""

from __future__ import annotations

from typing import ClassVar

from enclave.roles import ROLE_LABELS_ZH, ProjectRole, Role
from enclave.services.i18n import Labels, Translator

LABELS: Labels = {
    "app_title": ("Steward console", "数据治理控制台"),
    "language": ("中文", "English"),
    "signed_in_as": ("Signed in as", "当前用户"),
    "error_title": ("The request could not be completed", "无法完成该请求"),
    "back": ("Back", "返回"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "none": ("None.", "无。"),
    # navigation
    "nav_mine": ("My applications", "我的申请"),
    "nav_new": ("New application", "新建申请"),
    "nav_office": ("Pre-review queue", "初审队列"),
    "nav_committee": ("Committee queue", "委员会审议队列"),
    "nav_steward": ("Agreements and provisioning", "协议与开通"),
    "nav_projects": ("Projects", "项目"),
    "nav_monitoring": ("Monitoring", "监控"),
    "nav_audit": ("Audit log", "审计日志"),
    # lists
    "application": ("Application", "申请"),
    "applicant": ("Applicant", "申请人"),
    "state": ("State", "状态"),
    "level": ("Level", "级别"),
    "revision": ("Revision", "修订版本"),
    "submitted_at": ("Submitted", "提交时间"),
    "decided_at": ("Decided", "决定时间"),
    "project": ("Project", "项目"),
    "no_applications": ("No applications.", "没有申请。"),
    "office_queue_title": ("Applications waiting for pre-review", "待初审的申请"),
    "committee_queue_title": ("Applications waiting for the committee's vote", "待委员会表决的申请"),
    "steward_queue_title": (
        "Approved applications waiting for their agreement and project",
        "已批准、待签署协议和开通项目的申请",
    ),
    # the application form
    "form_title_new": ("New data-use application", "新建数据使用申请"),
    "form_title_edit": ("Edit the application", "修改申请"),
    "form_help": (
        "Ask for the minimum necessary: only the columns, the records and the time range the purpose "
        "needs. Nothing is checked in the browser: the server checks the form against the catalog and "
        "says what to change.",
        "请仅申请最少必要的数据：只选择用途所需的字段、记录和时间范围。浏览器不做校验，服务器会对照数据目录检查"
        "申请表并说明需要修改之处。",
    ),
    "section_project": ("Project", "项目"),
    "section_datasets": ("Datasets and columns", "数据集与字段"),
    "datasets_help": (
        "Tick the columns you need; a dataset with no column ticked is not requested.",
        "勾选所需字段；未勾选任何字段的数据集不会被申请。",
    ),
    "no_datasets": ("The catalog has no datasets yet.", "数据目录中尚无数据集。"),
    "section_team": ("Team", "团队"),
    "section_use": ("Use", "使用方式"),
    "section_legal": ("Legal basis and ethics", "法律依据与伦理审查"),
    "section_attachments": ("Attachments", "附件"),
    "section_form": ("The application", "申请内容"),
    "attachments_help": (
        "Attach the documents your track and legal basis need (for research: the ethics approval).",
        "请按申请类别和法律依据上传所需材料（科研用途需上传伦理审查批件）。",
    ),
    "f_title": ("Title", "标题"),
    "f_purpose": ("Purpose", "用途"),
    "f_purpose_category": ("Purpose category", "用途类别"),
    "f_track": ("Track", "申请类别"),
    "f_organisation": ("Organisation", "申请单位"),
    "f_time_range": ("Records dated", "数据时间范围"),
    "time_range_help": ("optional", "可选"),
    "f_period": ("Period of use", "使用期限"),
    "f_access": ("Access", "访问方式"),
    "f_min_cell_count": ("Minimum cell count (k)", "最小单元格计数（k）"),
    "f_legal_basis": ("Legal basis", "法律依据"),
    "f_consent": ("Consent or waiver: what it covers", "知情同意或豁免的范围"),
    "f_ethics_ref": ("Ethics approval reference", "伦理审查批件编号"),
    "f_cross_border": ("The data or results will leave the country", "数据或结果将出境"),
    "user": ("User", "用户"),
    "team_role": ("Role", "角色"),
    "start": ("start", "开始"),
    "end": ("end", "结束"),
    "save_draft": ("Save as draft", "保存草稿"),
    "save_submit": ("Save and submit", "保存并提交"),
    # one application
    "edit": ("Edit", "修改"),
    "submit": ("Submit for pre-review", "提交初审"),
    "withdraw": ("Withdraw", "撤回"),
    "add_attachments": ("Add attachments", "添加附件"),
    "upload": ("Upload", "上传"),
    "missing_attachments": ("Still needed before submitting", "提交前仍需提供"),
    "no_attachments": ("No attachments.", "没有附件。"),
    "kind": ("Kind", "类型"),
    "file": ("File", "文件"),
    "size": ("Size (bytes)", "大小（字节）"),
    "uploaded_at": ("Uploaded", "上传时间"),
    "digest": ("Digest (countersigned)", "摘要（会签对象）"),
    "history": ("History", "历史记录"),
    "when": ("When", "时间"),
    "event": ("Event", "事件"),
    "by": ("By", "执行人"),
    "comment": ("Comment", "意见"),
    "event_filed": ("filed", "创建"),
    "event_submitted": ("submitted", "提交"),
    "event_review_forward": ("pre-review passed: forwarded to the committee", "初审通过：转交委员会"),
    "event_review_return": ("pre-review: returned to the applicant", "初审：退回申请人"),
    "event_vote": ("vote", "表决"),
    "event_decided": ("decided", "决定"),
    "start_workspace": ("Start the project's workspace", "启动项目工作空间"),
    "state_help_draft": ("Not submitted yet: you can still change it.", "尚未提交：仍可修改。"),
    "state_help_submitted": ("Submitted.", "已提交。"),
    "state_help_office_review": (
        "Waiting for the Data Security Work Office's pre-review.",
        "等待数据安全工作办公室初审。",
    ),
    "state_help_returned": (
        "Returned by the Office: change it as the comment says and submit it again.",
        "已被办公室退回：请按意见修改后重新提交。",
    ),
    "state_help_committee_review": (
        "Waiting for the Data Security Committee's vote.",
        "等待数据安全委员会表决。",
    ),
    "state_help_approved": (
        "Approved: the data-use agreement is signed next, then the project is provisioned.",
        "已批准：接下来签署数据使用协议，然后开通项目。",
    ),
    "state_help_rejected": ("Rejected by the committee.", "委员会未予批准。"),
    "state_help_withdrawn": ("Withdrawn.", "已撤回。"),
    # the DUA
    "dua": ("Data-use agreement", "数据使用协议"),
    "sign_dua_title": ("Sign the DUA", "签署数据使用协议"),
    "sign_dua_help": (
        "Your application is approved. Before any data is provided you sign the data-use agreement: "
        "these terms, for the period below. Your electronic signature has the same effect as a "
        "handwritten one.",
        "您的申请已获批准。在提供任何数据之前，您需要签署数据使用协议：同意以下条款，期限如下。"
        "电子签名与手写签名具有同等效力。",
    ),
    "sign_dua": ("Sign the DUA electronically", "电子签署协议"),
    "dua_term": ("Term of the agreement", "协议期限"),
    "dua_kind_pdf": ("Signed PDF", "已签署的 PDF"),
    "dua_kind_esign": ("Signed electronically by the PI", "项目负责人电子签署"),
    "signer": ("Signer", "签署人"),
    "retain_until": ("kept until", "保存至"),
    "verified": ("Document and signature verified", "文件与签名已验证"),
    "download": ("Download", "下载"),
    "dua_recorded": ("recorded", "已登记"),
    "dua_waiting": ("waiting", "待签署"),
    "dua_waiting_help": (
        "No agreement yet. Record the signed PDF here, or let the PI sign it electronically: they see "
        '"Sign the DUA" on their application\'s page.',
        "尚无协议。可在此登记已签署的 PDF，或由项目负责人电子签署：其申请页面上会显示“签署数据使用协议”。",
    ),
    "dua_record_pdf": ("Record the signed PDF", "登记已签署的 PDF"),
    "dua_pdf": ("Signed agreement (PDF)", "已签署的协议（PDF）"),
    "dua_record": ("Record the agreement", "登记协议"),
    # the Office
    "office_review_title": ("Pre-review", "初审"),
    "applicant_history": ("The applicant's history", "申请人历史记录"),
    "overlap_flag": (
        "Datasets asked for again (possible leakage in batches)",
        "重复申请的数据集（可能存在分批泄露）",
    ),
    "no_overlap": ("No dataset asked for again.", "没有重复申请的数据集。"),
    "earlier_applications": (
        "Other applications by the applicant or organisation",
        "申请人或申请单位的其他申请",
    ),
    "earlier_exports": ("Exports by the applicant and the team", "申请人及团队的导出记录"),
    "export": ("Export", "导出"),
    "requester": ("Requester", "申请人"),
    "overlap": ("Overlap", "重叠"),
    "pre_review": ("Your pre-review", "初审意见"),
    "checklist": ("Checklist", "检查清单"),
    "scorecard": ("Scorecard", "评分表"),
    "scorecard_help": ("1 = worst, 5 = best", "1 = 最差，5 = 最好"),
    "forward": ("Forward to the committee", "转交委员会"),
    "return": ("Return to the applicant", "退回申请人"),
    # the Committee
    "committee_vote_title": ("Committee vote", "委员会表决"),
    "tally": ("Tally", "计票"),
    "committee_rule": ("Committee rule", "表决规则"),
    "seated": ("Seated members", "在任委员"),
    "needed": ("Approvals needed", "所需同意票"),
    "approvals": ("Votes to approve", "同意票"),
    "countersigned_approvals": ("Countersigned approvals (these count)", "已会签的同意票（计入）"),
    "votes_hidden": (
        "Votes are hidden until every seated member has voted or the committee has decided.",
        "在全体在任委员表决或委员会作出决定之前，表决内容不可见。",
    ),
    "rejections": ("Rejections", "反对票"),
    "countersigned": ("countersigned", "已会签"),
    "still_needed": ("Approvals still needed", "仍需同意票"),
    "outstanding": ("Members still to vote", "尚未表决的委员"),
    "approval_chain": ("Also approved by", "其他审批角色"),
    "your_vote": ("Your vote", "您的表决"),
    "approve_countersign": ("Approve and countersign", "同意并会签"),
    "approve_only": ("Approve (countersign later)", "同意（稍后会签）"),
    "reject": ("Reject", "反对"),
    "countersign": ("Countersign", "会签"),
    "countersign_help": (
        "An approval counts once you countersign the application's digest with your signing key "
        "(R-APP-7: every member who votes yes countersigns).",
        "您的同意票在您用签名密钥会签申请摘要后才计入（R-APP-7：表决同意的全体委员会签）。",
    ),
    # stewards
    "steward_application_title": ("Agreement and provisioning", "协议与开通"),
    "provision": ("Provision the project", "开通项目"),
    "provisioned_as": ("Provisioned as project", "已开通为项目"),
    "project_id": ("Project id", "项目编号"),
    "project_id_help": ("lower case letters, digits and dashes", "小写字母、数字和连字符"),
    "narrow_columns": ("Columns (untick to narrow)", "字段（取消勾选以收窄）"),
    "narrow_analysts": ("Analysts (untick to narrow)", "分析人员（取消勾选以收窄）"),
    "provision_button": ("Provision", "开通"),
    "projects_title": ("Projects", "项目"),
    "no_projects": ("No projects.", "没有项目。"),
    "members": ("Members", "成员"),
    "actions": ("Actions", "操作"),
    "reason": ("Reason", "理由"),
    "step_suspend": ("Suspend", "暂停"),
    "step_resume": ("Resume", "恢复"),
    "step_expire": ("Expire", "终止"),
    "step_destroy": ("Destroy", "销毁"),
    "certificate": ("Destruction certificate", "销毁证明"),
    "certificate_title": ("Destruction certificate", "销毁证明"),
    "monitoring_title": ("Monitoring", "监控"),
    "locks": ("Locked analysts", "被锁定的分析人员"),
    "no_locks": ("Nobody is locked.", "没有被锁定的人员。"),
    "locked_at": ("Locked at", "锁定时间"),
    "unlock": ("Unlock", "解锁"),
    "alerts": ("Alerts", "告警"),
    "no_alerts": ("No alerts.", "没有告警。"),
    "rule": ("Rule", "规则"),
    "observed": ("Observed", "观测值"),
    "threshold": ("Threshold", "阈值"),
    # auditors
    "audit_title": ("Audit log", "审计日志"),
    "filter_user": ("User", "用户"),
    "filter_project": ("Project", "项目"),
    "filter_action": ("Action", "操作"),
    "filter_since": ("Since", "起始时间"),
    "filter_until": ("Until", "截止时间"),
    "filter_text": ("Text", "文本"),
    "search": ("Search", "检索"),
    "download_csv": ("Download as CSV", "下载 CSV"),
    "no_events": ("No events match.", "没有符合条件的事件。"),
    "object": ("Object", "对象"),
    "outcome": ("Outcome", "结果"),
    "next_page": ("Next page", "下一页"),
    # states: applications and projects
    "state_draft": ("draft", "草稿"),
    "state_submitted": ("submitted", "已提交"),
    "state_office_review": ("in pre-review", "初审中"),
    "state_returned": ("returned", "已退回"),
    "state_committee_review": ("in committee review", "委员会审议中"),
    "state_approved": ("approved", "已批准"),
    "state_rejected": ("rejected", "未批准"),
    "state_withdrawn": ("withdrawn", "已撤回"),
    "state_active": ("active", "使用中"),
    "state_suspended": ("suspended", "已暂停"),
    "state_expired": ("expired", "已终止"),
    "state_destroyed": ("destroyed", "已销毁"),
}

# The values of the domain's choice fields, by group (``t.choice(group, value)``).
CHOICES: dict[str, dict[str, tuple[str, str]]] = {
    "purpose": {
        "research": ("scientific research", "科学研究"),
        "contest": ("data-innovation contest", "数据创新竞赛"),
        "ai_training": ("AI contest or sample training", "人工智能竞赛或样本训练"),
    },
    "track": {
        "in_house": ("in-house project", "院内项目"),
        "domestic_partner": ("domestic project with a qualified partner", "与境内合格单位合作的项目"),
        "foreign": ("project with a foreign partner", "与境外单位合作的项目"),
    },
    "basis": {
        "consent": ("consent of the persons", "个人知情同意"),
        "consent_waiver": ("consent waiver by the ethics committee", "伦理委员会豁免知情同意"),
        "limited_data_set": ("limited data set", "有限数据集"),
        "public_interest": ("public interest or law", "公共利益或法律规定"),
        "treatment": ("treatment, payment or care", "诊疗、支付或照护"),
        "to_subject": ("provided to the person concerned", "提供给本人"),
    },
    "access": {
        "aggregate": ("aggregate results only", "仅汇总结果"),
        "rows": ("row-level, inside the enclave", "在安全环境内访问明细数据"),
    },
    "team": {
        ProjectRole.PI.value: ("principal investigator", "项目负责人"),
        ProjectRole.ANALYST.value: ("analyst", "分析人员"),
        ProjectRole.COMMITTEE.value: ("export committee", "导出审核委员"),
    },
    "column": {
        "person_key": ("person key", "个人标识键"),
        "direct_id": ("direct identifier: never provided", "直接标识符：不予提供"),
        "quasi_id": ("quasi-identifier", "准标识符"),
        "sensitive": ("sensitive", "敏感"),
        "measure": ("measure", "度量"),
        "date": ("date", "日期"),
        "text": ("free text: dropped", "自由文本：将被删除"),
        "attribute": ("attribute", "属性"),
    },
    "vote": {"approve": ("approve", "同意"), "reject": ("reject", "反对")},
}

ROLE_LABELS_EN: dict[Role, str] = {
    Role.OFFICE: "Data Security Work Office",
    Role.COMMITTEE: "Data Security Committee member",
    Role.STEWARD: "data steward",
    Role.SECURITY_ADMIN: "security administrator",
    Role.SECURITY_AUDITOR: "security auditor",
    Role.SYSTEM_ADMIN: "system administrator",
    Role.DEID_OPERATOR: "de-identification operator",
}


class ConsoleTranslator(Translator):
    labels: ClassVar[Labels] = LABELS

    def choice(self, group: str, value: str) -> str:
        """A choice's label (``purpose``, ``track``, ...), or the value itself when it has none."""
        labels = CHOICES.get(group, {}).get(value)
        return self.message(*labels) if labels else value

    def role(self, value: str) -> str:
        try:
            role = Role(value)
        except ValueError:
            return value
        return ROLE_LABELS_ZH[role] if self.lang == "zh" else ROLE_LABELS_EN[role]
