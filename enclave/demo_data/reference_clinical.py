"""Reference lists for synthetic care: diagnoses (ICD-10), lab tests (LOINC), drugs (ATC), departments.

Frequencies are relative weights per age group (child < 14, adult 14-59, senior >= 60). Diagnoses
marked ``rare`` never come from the frequency draw: the generator plants each on one to four patients,
so that the disclosure rules (R-PREP-13, R-QRY-7: fewer than 5 persons) always have something to refuse.
"""

from __future__ import annotations

from typing import NamedTuple

CHILD_BELOW = 14
SENIOR_FROM = 60

EMERGENCY_DEPARTMENT = "急诊科"
PAEDIATRICS = "儿科"
# Departments that also treat children (the others hand children to paediatrics).
SEE_CHILDREN = frozenset({"普外科", "骨科", "眼科", "精神心理科", "血液科", "全科医学科"})

VISIT_TYPES = ("outpatient", "emergency", "inpatient")
OUTPATIENT, EMERGENCY, INPATIENT = range(3)


class Diagnosis(NamedTuple):
    code: str
    name: str
    department: str
    weights: tuple[float, float, float]  # visit reason frequency: child, adult, senior
    prevalence: tuple[float, float, float]  # chance of being a patient's main chronic condition
    inpatient: float  # share of its visits that are admissions
    emergency: float  # share of its visits through the emergency room
    cost: float  # cost multiplier against a typical visit of the same type
    complaint: str  # note fragment; {d} is the duration
    drugs: tuple[tuple[str, float], ...] = ()  # first-line prescriptions
    adjuncts: tuple[tuple[str, float], ...] = ()  # add-on prescriptions, disjoint from drugs
    panels: tuple[tuple[str, float], ...] = ()  # lab panels ordered at such a visit
    rare: bool = False
    sex: str | None = None  # rare diagnoses only: the sex it occurs in
    ages: tuple[int, int] = (0, 200)  # rare diagnoses only: age range of planted patients


_NO = (0.0, 0.0, 0.0)

DIAGNOSES: tuple[Diagnosis, ...] = (
    Diagnosis("I10", "原发性高血压", "心内科", (0, 8, 14), (0, 0.10, 0.30), 0.03, 0.02, 1.0,
              "头晕、头痛{d}，血压升高",
              (("氨氯地平", 0.35), ("硝苯地平", 0.2), ("缬沙坦", 0.2), ("氯沙坦", 0.15), ("美托洛尔", 0.1)),
              (("阿司匹林", 0.4), ("阿托伐他汀", 0.4), ("氢氯噻嗪", 0.2)),
              (("lipids", 0.4), ("renal", 0.4), ("glucose", 0.2))),
    Diagnosis("E11.9", "2型糖尿病", "内分泌科", (0, 4, 8), (0, 0.04, 0.13), 0.05, 0.01, 1.2,
              "口干、多饮、多尿{d}，血糖控制欠佳",
              (("二甲双胍", 0.6), ("格列齐特", 0.15), ("阿卡波糖", 0.15), ("甘精胰岛素", 0.1)),
              (("阿托伐他汀", 0.5), ("缬沙坦", 0.3), ("阿司匹林", 0.2)),
              (("glucose", 0.7), ("lipids", 0.15), ("renal", 0.15))),
    Diagnosis("I25.1", "动脉粥样硬化性心脏病", "心内科", (0, 1.5, 6), (0, 0.01, 0.07), 0.15, 0.05, 1.5,
              "活动后胸闷、胸痛{d}",
              (("阿司匹林", 0.5), ("氯吡格雷", 0.2), ("美托洛尔", 0.3)),
              (("阿托伐他汀", 0.6), ("瑞舒伐他汀", 0.4)),
              (("lipids", 0.5), ("cardiac", 0.3), ("cbc", 0.2))),
    Diagnosis("E78.5", "高脂血症", "心内科", (0, 3, 4), (0, 0.03, 0.05), 0.01, 0.0, 0.8,
              "体检发现血脂升高{d}",
              (("阿托伐他汀", 0.6), ("瑞舒伐他汀", 0.4)), (),
              (("lipids", 0.9), ("liver", 0.1))),
    Diagnosis("J18.9", "肺炎", "呼吸内科", (8, 3, 6), _NO, 0.35, 0.2, 1.2,
              "发热、咳嗽、咳痰{d}",
              (("头孢呋辛", 0.3), ("头孢曲松", 0.3), ("左氧氟沙星", 0.25), ("阿奇霉素", 0.15)),
              (("氨溴索", 1.0),),
              (("infection", 0.8), ("cbc", 0.2))),
    Diagnosis("J06.9", "急性上呼吸道感染", "呼吸内科", (30, 12, 5), _NO, 0.01, 0.15, 0.6,
              "咽痛、流涕、发热{d}",
              (("对乙酰氨基酚", 0.35), ("布洛芬", 0.25), ("阿莫西林", 0.25), ("阿奇霉素", 0.15)),
              (("氨溴索", 1.0),),
              (("infection", 0.7), ("cbc", 0.3))),
    Diagnosis("K29.7", "胃炎", "消化内科", (1, 6, 4), _NO, 0.02, 0.05, 0.9,
              "上腹部隐痛、反酸{d}",
              (("奥美拉唑", 1.0),), (("多潘立酮", 0.6), ("铝碳酸镁", 0.4)),
              (("cbc", 0.6), ("liver", 0.4))),
    Diagnosis("K21.9", "胃食管反流病", "消化内科", (0.3, 3, 2), (0, 0.01, 0.01), 0.01, 0.02, 0.9,
              "烧心、反酸{d}",
              (("奥美拉唑", 0.6), ("泮托拉唑", 0.4)), (("多潘立酮", 1.0),),
              (("cbc", 1.0),)),
    Diagnosis("I63.9", "脑梗死", "神经内科", (0, 0.5, 3), _NO, 0.6, 0.3, 1.8,
              "突发一侧肢体无力、言语不清{d}",
              (("阿司匹林", 0.5), ("氯吡格雷", 0.3), ("阿替普酶", 0.2)),
              (("阿托伐他汀", 0.7), ("瑞舒伐他汀", 0.3)),
              (("lipids", 0.4), ("glucose", 0.3), ("cbc", 0.3))),
    Diagnosis("J44.9", "慢性阻塞性肺疾病", "呼吸内科", (0, 0.5, 3), (0, 0.005, 0.04), 0.25, 0.1, 1.3,
              "反复咳嗽、咳痰、气喘{d}",
              (("噻托溴铵", 0.45), ("布地奈德", 0.35), ("沙丁胺醇", 0.2)), (("氨溴索", 1.0),),
              (("infection", 0.5), ("cbc", 0.5))),
    Diagnosis("J45.9", "哮喘", "呼吸内科", (5, 1.5, 1), (0.04, 0.015, 0.015), 0.08, 0.15, 0.9,
              "发作性喘息、胸闷{d}",
              (("布地奈德", 0.6), ("沙丁胺醇", 0.4)), (("孟鲁司特", 1.0),),
              (("cbc", 1.0),)),
    Diagnosis("M54.5", "腰痛", "骨科", (0, 4, 3), _NO, 0.03, 0.03, 0.8,
              "腰部疼痛{d}，活动受限",
              (("塞来昔布", 0.5), ("布洛芬", 0.5)), (("乙哌立松", 1.0),),
              ()),
    Diagnosis("N18.9", "慢性肾脏病", "肾内科", (0, 0.5, 1.5), (0, 0.005, 0.02), 0.2, 0.03, 1.6,
              "双下肢水肿、乏力{d}",
              (("缬沙坦", 0.4), ("呋塞米", 0.3), ("重组人促红素", 0.3)), (("碳酸钙", 1.0),),
              (("renal", 0.8), ("cbc", 0.2))),
    Diagnosis("K80.2", "胆囊结石", "普外科", (0, 1.5, 1.5), _NO, 0.3, 0.1, 1.5,
              "右上腹疼痛{d}，进食油腻后加重",
              (("熊去氧胆酸", 0.6), ("头孢曲松", 0.4)), (),
              (("liver", 0.7), ("cbc", 0.3))),
    Diagnosis("I48.9", "心房颤动", "心内科", (0, 0.3, 1.5), (0, 0.002, 0.02), 0.2, 0.15, 1.4,
              "心悸、胸闷{d}，心律不齐",
              (("利伐沙班", 0.5), ("华法林", 0.25), ("美托洛尔", 0.25)), (),
              (("cardiac", 0.5), ("thyroid", 0.3), ("cbc", 0.2))),
    Diagnosis("I50.9", "心力衰竭", "心内科", (0, 0.2, 1.5), (0, 0.001, 0.02), 0.45, 0.25, 1.8,
              "活动后气促、夜间不能平卧{d}",
              (("呋塞米", 0.5), ("螺内酯", 0.25), ("美托洛尔", 0.25)),
              (("缬沙坦", 0.5), ("沙库巴曲缬沙坦", 0.5)),
              (("cardiac", 0.7), ("renal", 0.3))),
    Diagnosis("C34.9", "肺恶性肿瘤", "肿瘤科", (0, 0.2, 0.6), (0, 0.001, 0.006), 0.55, 0.02, 3.0,
              "咳嗽、痰中带血{d}，消瘦",
              (("卡铂", 0.5), ("紫杉醇", 0.5)), (("昂丹司琼", 1.0),),
              (("cbc", 0.7), ("liver", 0.3))),
    Diagnosis("C16.9", "胃恶性肿瘤", "肿瘤科", (0, 0.2, 0.5), (0, 0.001, 0.005), 0.55, 0.02, 3.0,
              "上腹部不适、食欲减退{d}，体重下降",
              (("奥沙利铂", 0.6), ("卡培他滨", 0.4)), (("昂丹司琼", 1.0),),
              (("cbc", 0.7), ("liver", 0.3))),
    Diagnosis("E03.9", "甲状腺功能减退症", "内分泌科", (0.2, 1.5, 1), (0.002, 0.015, 0.015), 0.01, 0.0, 0.9,
              "乏力、怕冷{d}",
              (("左甲状腺素", 1.0),), (),
              (("thyroid", 1.0),)),
    Diagnosis("M17.9", "膝关节骨关节炎", "骨科", (0, 1, 3), (0, 0.005, 0.04), 0.08, 0.0, 1.0,
              "双膝关节疼痛{d}，上下楼加重",
              (("塞来昔布", 0.6), ("氨基葡萄糖", 0.4)), (),
              ()),
    Diagnosis("S72.0", "股骨颈骨折", "骨科", (0, 0.1, 0.6), _NO, 0.75, 0.25, 2.5,
              "跌倒后髋部疼痛、不能站立{d}",
              (("依诺肝素", 1.0),), (("塞来昔布", 0.5), ("碳酸钙", 0.5)),
              (("cbc", 1.0),)),
    Diagnosis("R51", "头痛", "神经内科", (2, 3, 1.5), _NO, 0.01, 0.2, 0.7,
              "头痛{d}",
              (("布洛芬", 0.6), ("对乙酰氨基酚", 0.4)), (),
              ()),
    Diagnosis("A09", "感染性腹泻", "消化内科", (10, 3, 2), _NO, 0.05, 0.3, 0.7,
              "腹泻、腹痛{d}",
              (("蒙脱石散", 0.6), ("口服补液盐", 0.4)), (),
              (("cbc", 0.6), ("infection", 0.4))),
    Diagnosis("N39.0", "泌尿道感染", "肾内科", (0.5, 2, 2), _NO, 0.05, 0.15, 0.8,
              "尿频、尿急、尿痛{d}",
              (("左氧氟沙星", 0.5), ("呋喃妥因", 0.3), ("头孢呋辛", 0.2)), (),
              (("infection", 0.7), ("renal", 0.3))),
    Diagnosis("F32.9", "抑郁发作", "精神心理科", (0.2, 1.5, 0.5), (0.001, 0.01, 0.005), 0.05, 0.02, 1.0,
              "情绪低落、兴趣减退{d}",
              (("舍曲林", 0.7), ("艾司西酞普兰", 0.3)), (("艾司唑仑", 1.0),),
              (("thyroid", 1.0),)),
    Diagnosis("G47.0", "失眠", "神经内科", (0, 2, 2), (0, 0.01, 0.02), 0.0, 0.02, 0.6,
              "入睡困难、早醒{d}",
              (("艾司唑仑", 0.6), ("右佐匹克隆", 0.4)), (),
              ()),
    Diagnosis("H25.9", "老年性白内障", "眼科", (0, 0.2, 2), _NO, 0.35, 0.0, 1.2,
              "视物模糊{d}，逐渐加重",
              (("左氧氟沙星滴眼液", 0.6), ("妥布霉素地塞米松滴眼液", 0.4)), (),
              (("cbc", 0.6), ("glucose", 0.4))),
    Diagnosis("Z00.0", "一般健康检查", "全科医学科", (8, 8, 4), _NO, 0.0, 0.0, 1.1,
              "无明显不适，常规健康体检",
              (), (),
              (("cbc", 0.3), ("lipids", 0.25), ("glucose", 0.25), ("liver", 0.2))),
    Diagnosis("I21.9", "急性心肌梗死", "心内科", (0, 0.2, 0.5), _NO, 0.7, 0.3, 3.0,
              "突发胸骨后压榨样疼痛{d}",
              (("阿司匹林", 0.3), ("替格瑞洛", 0.5), ("阿替普酶", 0.2)),
              (("阿托伐他汀", 0.6), ("美托洛尔", 0.4)),
              (("cardiac", 0.9), ("lipids", 0.1))),
    Diagnosis("K35.8", "急性阑尾炎", "普外科", (1.5, 0.8, 0.3), _NO, 0.7, 0.3, 1.3,
              "转移性右下腹痛{d}",
              (("头孢曲松", 0.6), ("甲硝唑", 0.4)), (),
              (("infection", 1.0),)),
    # Rare: planted on one to four patients each, never drawn.
    Diagnosis("E75.2", "法布里病", "肾内科", _NO, _NO, 0.3, 0.0, 10.0,
              "肢端疼痛、少汗{d}",
              (("阿加糖酶β", 1.0),), (), (("renal", 1.0),), rare=True, ages=(10, 70)),
    Diagnosis("G71.0", "进行性肌营养不良", "神经内科", _NO, _NO, 0.3, 0.0, 2.0,
              "进行性双下肢无力{d}",
              (("泼尼松", 1.0),), (), (("cbc", 1.0),), rare=True, sex="M", ages=(3, 30)),
    Diagnosis("D66", "血友病A", "血液科", _NO, _NO, 0.4, 0.1, 5.0,
              "关节肿痛、皮下出血{d}",
              (("重组人凝血因子VIII", 1.0),), (), (("cbc", 1.0),), rare=True, sex="M"),
    Diagnosis("G12.2", "运动神经元病", "神经内科", _NO, _NO, 0.4, 0.0, 2.0,
              "四肢无力、肌肉萎缩{d}",
              (("利鲁唑", 1.0),), (), (("cbc", 1.0),), rare=True, ages=(40, 85)),
    Diagnosis("C53.9", "宫颈恶性肿瘤", "妇科", _NO, _NO, 0.6, 0.0, 3.0,
              "接触性阴道出血{d}",
              (("顺铂", 0.5), ("紫杉醇", 0.5)), (("昂丹司琼", 1.0),), (("cbc", 1.0),),
              rare=True, sex="F", ages=(25, 80)),
    Diagnosis("E70.0", "苯丙酮尿症", "儿科", _NO, _NO, 0.1, 0.0, 2.0,
              "智力发育落后{d}",
              (("沙丙蝶呤", 1.0),), (), (("liver", 1.0),), rare=True, ages=(0, 30)),
)  # fmt: skip

NOTE_DURATIONS = ("1天", "3天", "1周", "2周", "1月", "半年")
NOTE_PERSONS = ("患儿，男", "患儿，女", "男性患者", "女性患者", "老年男性", "老年女性")  # age group x sex
NOTE_PLANS: tuple[tuple[str, ...], ...] = (  # by visit type
    ("予对症治疗，门诊随诊。", "调整用药，1月后复诊。", "完善相关检查，择期复诊。"),
    (
        "急诊对症处理后症状缓解。",
        "急诊处理后留观，建议专科门诊随诊。",
        "病情较重，建议住院，家属要求门诊治疗。",
    ),
    ("入院后完善检查，予规范治疗，好转出院。", "住院治疗后病情稳定，嘱定期复查。", "经治疗好转，带药出院。"),
)


class LabTest(NamedTuple):
    code: str  # LOINC
    name: str
    unit: str
    low: float  # reference range; 0 means no lower limit
    high: float
    lognormal: bool  # skewed values: centre is the median, spread the log-scale sigma
    centre: float
    spread: float
    decimals: int


LAB_TESTS: tuple[LabTest, ...] = (
    LabTest("14771-0", "空腹血糖", "mmol/L", 3.9, 6.1, False, 5.2, 0.6, 2),
    LabTest("4548-4", "糖化血红蛋白", "%", 4.0, 6.0, False, 5.4, 0.4, 1),
    LabTest("14647-2", "总胆固醇", "mmol/L", 2.8, 5.2, False, 4.7, 0.9, 2),
    LabTest("14927-8", "甘油三酯", "mmol/L", 0.56, 1.7, True, 1.3, 0.45, 2),
    LabTest("22748-8", "低密度脂蛋白胆固醇", "mmol/L", 0.0, 3.4, False, 2.8, 0.7, 2),
    LabTest("14682-9", "肌酐", "μmol/L", 57.0, 111.0, False, 78.0, 15.0, 0),
    LabTest("14933-6", "尿酸", "μmol/L", 208.0, 428.0, False, 340.0, 80.0, 0),
    LabTest("2823-3", "钾", "mmol/L", 3.5, 5.3, False, 4.2, 0.4, 2),
    LabTest("718-7", "血红蛋白", "g/L", 115.0, 175.0, False, 135.0, 16.0, 0),
    LabTest("6690-2", "白细胞计数", "10^9/L", 3.5, 9.5, False, 6.5, 1.6, 2),
    LabTest("1742-6", "丙氨酸氨基转移酶", "U/L", 9.0, 50.0, True, 24.0, 0.45, 0),
    LabTest("10839-9", "肌钙蛋白I", "ng/mL", 0.0, 0.04, True, 0.01, 0.6, 3),
    LabTest("33762-6", "N末端脑钠肽前体", "pg/mL", 0.0, 125.0, True, 60.0, 0.8, 0),
    LabTest("3016-3", "促甲状腺激素", "mIU/L", 0.27, 4.2, True, 1.8, 0.45, 2),
    LabTest("1988-5", "C反应蛋白", "mg/L", 0.0, 10.0, True, 2.5, 0.9, 1),
)

LAB_PANELS: dict[str, tuple[str, ...]] = {  # panel -> LOINC codes
    "glucose": ("14771-0", "4548-4"),
    "lipids": ("14647-2", "14927-8", "22748-8"),
    "renal": ("14682-9", "14933-6", "2823-3"),
    "cbc": ("718-7", "6690-2"),
    "cardiac": ("10839-9", "33762-6"),
    "liver": ("1742-6",),
    "thyroid": ("3016-3",),
    "infection": ("6690-2", "1988-5"),
}
DEFAULT_PANELS: tuple[tuple[str, float], ...] = (("cbc", 0.6), ("liver", 0.2), ("renal", 0.2))
# Chance that a visit of each type orders a lab panel.
PANEL_CHANCE = (0.25, 0.7, 0.95)

# A patient with one of these diagnoses (at the visit or as main condition) has shifted results; centre and
# spread mean what they mean for the test (mean and sd, or median and log-scale sigma).
LAB_SHIFTS: tuple[tuple[str, tuple[str, ...], float, float], ...] = (  # LOINC, ICD-10 codes, centre, spread
    ("14771-0", ("E11.9",), 8.6, 2.2),
    ("4548-4", ("E11.9",), 7.9, 1.3),
    ("14647-2", ("E78.5", "I25.1"), 5.9, 1.0),
    ("22748-8", ("E78.5", "I25.1"), 3.8, 0.8),
    ("14927-8", ("E78.5", "E11.9"), 2.2, 0.5),
    ("14682-9", ("N18.9",), 190.0, 60.0),
    ("2823-3", ("N18.9",), 5.0, 0.6),
    ("718-7", ("C34.9", "C16.9", "N18.9"), 108.0, 18.0),
    ("6690-2", ("J18.9", "J06.9", "K35.8", "N39.0"), 12.0, 3.5),
    ("1988-5", ("J18.9", "K35.8"), 60.0, 0.8),
    ("10839-9", ("I21.9",), 3.5, 1.0),
    ("33762-6", ("I50.9",), 2800.0, 0.9),
    ("3016-3", ("E03.9",), 9.5, 0.6),
)


class Drug(NamedTuple):
    name: str
    atc: str
    price: float  # CNY per unit
    pack: str  # key of PACK_QUANTITIES


PACK_QUANTITIES: dict[str, tuple[tuple[int, float], ...]] = {  # quantity, weight
    "tablet": ((7, 0.15), (14, 0.2), (28, 0.25), (30, 0.2), (60, 0.12), (90, 0.08)),
    "vial": ((1, 0.3), (2, 0.2), (3, 0.2), (5, 0.15), (7, 0.1), (10, 0.05)),
    "single": ((1, 1.0),),
    "box": ((1, 0.5), (2, 0.3), (3, 0.15), (6, 0.05)),
}

DRUGS: tuple[Drug, ...] = (
    Drug("二甲双胍", "A10BA02", 0.25, "tablet"),
    Drug("格列齐特", "A10BB09", 0.6, "tablet"),
    Drug("阿卡波糖", "A10BF01", 1.2, "tablet"),
    Drug("甘精胰岛素", "A10AE04", 180.0, "box"),
    Drug("氨氯地平", "C08CA01", 0.5, "tablet"),
    Drug("硝苯地平", "C08CA05", 1.0, "tablet"),
    Drug("缬沙坦", "C09CA03", 1.5, "tablet"),
    Drug("氯沙坦", "C09CA01", 1.2, "tablet"),
    Drug("沙库巴曲缬沙坦", "C09DX04", 8.0, "tablet"),
    Drug("美托洛尔", "C07AB02", 0.4, "tablet"),
    Drug("氢氯噻嗪", "C03AA03", 0.1, "tablet"),
    Drug("呋塞米", "C03CA01", 0.1, "tablet"),
    Drug("螺内酯", "C03DA01", 0.2, "tablet"),
    Drug("阿司匹林", "B01AC06", 0.15, "tablet"),
    Drug("氯吡格雷", "B01AC04", 2.5, "tablet"),
    Drug("替格瑞洛", "B01AC24", 5.0, "tablet"),
    Drug("华法林", "B01AA03", 0.3, "tablet"),
    Drug("利伐沙班", "B01AF01", 5.5, "tablet"),
    Drug("依诺肝素", "B01AB05", 45.0, "vial"),
    Drug("阿替普酶", "B01AD02", 4500.0, "single"),
    Drug("阿托伐他汀", "C10AA05", 1.8, "tablet"),
    Drug("瑞舒伐他汀", "C10AA07", 1.5, "tablet"),
    Drug("奥美拉唑", "A02BC01", 0.6, "tablet"),
    Drug("泮托拉唑", "A02BC02", 1.5, "tablet"),
    Drug("铝碳酸镁", "A02AD04", 0.5, "tablet"),
    Drug("多潘立酮", "A03FA03", 0.6, "tablet"),
    Drug("蒙脱石散", "A07BC05", 1.5, "box"),
    Drug("口服补液盐", "A07CA", 1.0, "box"),
    Drug("熊去氧胆酸", "A05AA02", 3.0, "tablet"),
    Drug("阿莫西林", "J01CA04", 0.4, "tablet"),
    Drug("头孢呋辛", "J01DC02", 1.5, "tablet"),
    Drug("头孢曲松", "J01DD04", 15.0, "vial"),
    Drug("左氧氟沙星", "J01MA12", 1.5, "tablet"),
    Drug("阿奇霉素", "J01FA10", 2.0, "tablet"),
    Drug("甲硝唑", "J01XD01", 8.0, "vial"),
    Drug("呋喃妥因", "J01XE01", 0.5, "tablet"),
    Drug("氨溴索", "R05CB06", 0.8, "tablet"),
    Drug("布洛芬", "M01AE01", 0.5, "tablet"),
    Drug("塞来昔布", "M01AH01", 3.0, "tablet"),
    Drug("氨基葡萄糖", "M01AX05", 1.0, "tablet"),
    Drug("乙哌立松", "M03BX09", 1.2, "tablet"),
    Drug("对乙酰氨基酚", "N02BE01", 0.3, "tablet"),
    Drug("沙丁胺醇", "R03AC02", 25.0, "box"),
    Drug("布地奈德", "R03BA02", 90.0, "box"),
    Drug("噻托溴铵", "R03BB04", 180.0, "box"),
    Drug("孟鲁司特", "R03DC03", 3.5, "tablet"),
    Drug("左甲状腺素", "H03AA01", 0.5, "tablet"),
    Drug("舍曲林", "N06AB06", 3.0, "tablet"),
    Drug("艾司西酞普兰", "N06AB10", 4.0, "tablet"),
    Drug("艾司唑仑", "N05CD04", 0.2, "tablet"),
    Drug("右佐匹克隆", "N05CF04", 2.5, "tablet"),
    Drug("碳酸钙", "A12AA04", 0.5, "tablet"),
    Drug("重组人促红素", "B03XA01", 60.0, "vial"),
    Drug("左氧氟沙星滴眼液", "S01AE05", 20.0, "box"),
    Drug("妥布霉素地塞米松滴眼液", "S01CA01", 30.0, "box"),
    Drug("卡铂", "L01XA02", 300.0, "vial"),
    Drug("顺铂", "L01XA01", 50.0, "vial"),
    Drug("紫杉醇", "L01CD01", 600.0, "vial"),
    Drug("奥沙利铂", "L01XA03", 900.0, "vial"),
    Drug("卡培他滨", "L01BC06", 12.0, "tablet"),
    Drug("昂丹司琼", "A04AA01", 20.0, "vial"),
    Drug("阿加糖酶β", "A16AB04", 8000.0, "vial"),
    Drug("泼尼松", "H02AB07", 0.2, "tablet"),
    Drug("重组人凝血因子VIII", "B02BD02", 2500.0, "vial"),
    Drug("利鲁唑", "N07XX02", 30.0, "tablet"),
    Drug("沙丙蝶呤", "A16AX07", 60.0, "tablet"),
)
# Chance that a visit of each type gets a first-line prescription, and then an add-on.
PRESCRIPTION_CHANCE = (0.7, 0.6, 0.9)
ADJUNCT_CHANCE = 0.35
