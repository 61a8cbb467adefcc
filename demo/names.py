"""Word lists for realistic enterprise, product and brand names of the demo city, by sector."""

from __future__ import annotations

from dataclasses import dataclass

# Trade names (字號) of the kind Xuzhou enterprises register.
TRADE_NAMES = (
    "恒源",
    "徐工",
    "維維",
    "彭城",
    "漢風",
    "龍泉",
    "金駝",
    "雲龍",
    "泰隆",
    "華潤",
    "新宇",
    "天虹",
    "宏達",
    "盛隆",
    "金鷹",
    "海天",
    "順發",
    "東方",
    "長江",
    "中天",
    "利民",
    "豐泰",
    "匯通",
    "永興",
    "博遠",
    "鼎盛",
    "九州",
    "正大",
    "藍天",
    "綠源",
    "神州",
    "金龍",
    "瑞祥",
    "聚源",
    "萬通",
    "嘉禾",
    "華宇",
    "興隆",
    "恒信",
    "宏圖",
    "宇通",
    "凱達",
    "鑫源",
    "富華",
    "遠航",
    "安泰",
    "光明",
    "新華",
    "天元",
    "大洋",
    "同力",
    "創新",
    "振華",
    "銀河",
    "泰和",
    "廣源",
    "康達",
    "和平",
    "金山",
    "潤豐",
    "徐淮",
    "漢王",
    "楚韻",
    "雲台",
    "泉潤",
    "淮海",
    "蘇北",
    "微山",
    "駱馬",
    "沂河",
)


@dataclass(frozen=True)
class Trade:
    """A line of business: how its enterprises are named, what they make, where it is checked."""

    sector: str
    business: str
    product_category: str
    products: tuple[str, ...]
    scope: str


TRADES = (
    Trade(
        "industry",
        "工程機械",
        "machinery_safety",
        ("輪式裝載機", "液壓挖掘機", "汽車起重機", "壓路機", "攤鋪機"),
        "工程機械的設計、生產和服務",
    ),
    Trade(
        "industry",
        "機械製造",
        "machinery_safety",
        ("減速機", "液壓油缸", "齒輪泵", "工業閥門", "礦用絞車"),
        "通用機械設備的生產",
    ),
    Trade(
        "industry",
        "電氣",
        "electrical_materials",
        ("低壓開關櫃", "電力電纜", "變壓器", "電線電纜", "配電箱"),
        "輸配電設備的設計和生產",
    ),
    Trade(
        "industry",
        "電子科技",
        "electronics",
        ("LED照明燈具", "電子元器件", "監控攝像機", "電源適配器"),
        "電子產品的研發和生產",
    ),
    Trade(
        "industry",
        "化工",
        "chemical_products",
        ("聚氯乙烯樹脂", "燒鹼", "塗料", "工業甲醇", "膠粘劑"),
        "化工產品的生產",
    ),
    Trade(
        "industry",
        "建材",
        "building_materials",
        ("普通硅酸鹽水泥", "加氣混凝土砌塊", "陶瓷牆地磚", "塑料管材", "防水卷材"),
        "建築材料的生產",
    ),
    Trade(
        "industry",
        "紡織服裝",
        "textiles_apparel",
        ("精梳棉紗", "針織內衣", "西服", "牛仔布", "羽絨服"),
        "紡織品和服裝的生產",
    ),
    Trade(
        "industry",
        "食品",
        "food",
        ("豆奶粉", "速凍水餃", "醬油", "掛麵", "火腿腸", "白酒"),
        "食品的生產和銷售",
    ),
    Trade(
        "industry",
        "家電",
        "household_appliances",
        ("電熱水器", "電風扇", "電飯鍋", "空氣淨化器"),
        "家用電器的生產",
    ),
    Trade(
        "industry",
        "汽車零部件",
        "vehicles_parts",
        ("汽車輪轂", "制動蹄片", "汽車座椅", "車橋總成"),
        "汽車零部件的生產",
    ),
    Trade(
        "industry",
        "鋼鐵",
        "metallurgy",
        ("熱軋帶肋鋼筋", "焊接鋼管", "鑄鐵件", "冷軋薄板"),
        "鋼材的冶煉和軋製",
    ),
    Trade(
        "industry", "家具", "furniture", ("實木家具", "辦公家具", "板式家具"), "家具的設計和生產"
    ),
    Trade(
        "industry",
        "木業",
        "building_materials",
        ("膠合板", "細木工板", "強化木地板"),
        "人造板的生產",
    ),
    Trade(
        "agriculture",
        "農業科技",
        "agricultural_inputs",
        ("複混肥料", "小麥良種", "生物有機肥", "農藥製劑"),
        "農業生產資料的生產和銷售",
    ),
    Trade(
        "agriculture",
        "食品",
        "food",
        ("大蒜", "牛蒡", "銀杏葉茶", "山藥", "板栗", "蘋果"),
        "農產品的種植、加工和銷售",
    ),
    Trade(
        "agriculture",
        "牧業",
        "food",
        ("鮮牛奶", "鮮雞蛋", "冷鮮豬肉", "淡水魚"),
        "畜禽養殖和產品加工",
    ),
    Trade(
        "service",
        "物流",
        "light_industry",
        ("倉儲配送服務", "冷鏈物流服務"),
        "貨物運輸、倉儲和配送",
    ),
    Trade("service", "商貿", "light_industry", ("百貨零售服務", "連鎖超市服務"), "商品零售和批發"),
    Trade("service", "酒店管理", "food_related", ("酒店住宿服務", "餐飲服務"), "住宿和餐飲服務"),
)

LEGAL_FORMS = {
    "industry": ("有限公司", "股份有限公司", "有限責任公司", "集團有限公司"),
    "agriculture": ("有限公司", "專業合作社", "農業發展有限公司"),
    "service": ("有限公司", "股份有限公司", "有限責任公司"),
}

CERTIFICATION_BODIES = (
    "中國質量認證中心",
    "方圓標誌認證集團有限公司",
    "中國船級社質量認證公司",
    "北京世標認證中心有限公司",
    "中質協質量保證中心",
    "江蘇九州認證有限公司",
    "中國新時代認證中心",
    "上海質量體系審核中心",
)
ACCREDITATION_BODY = "中國合格評定國家認可委員會 (CNAS)"

TESTING_LABS = (
    "國家工程機械質量監督檢驗中心",
    "江蘇省產品質量監督檢驗研究院",
    "徐州市產品質量監督檢驗中心",
    "江蘇省食品質量安全監督檢驗中心",
    "國家建築材料質量監督檢驗中心",
)

# What a failed sample typically failed on, by product category.
NONCONFORMITIES = {
    "food": (
        ("菌落總數", "≤10000 CFU/g", "56000 CFU/g"),
        ("苯甲酸", "不得使用", "0.21 g/kg"),
        ("標籤", "應符合 GB 7718", "未標示生產日期"),
    ),
    "machinery_safety": (
        ("防護裝置", "應符合 GB/T 8196", "無防護罩"),
        ("噪聲", "≤85 dB(A)", "91 dB(A)"),
    ),
    "electrical_materials": (
        ("導體電阻", "≤1.83 Ω/km", "2.41 Ω/km"),
        ("絕緣厚度", "≥0.7 mm", "0.52 mm"),
    ),
    "electronics": (("電磁兼容", "應符合 GB 17625.1", "諧波電流超標"),),
    "chemical_products": (("揮發性有機化合物", "≤120 g/L", "186 g/L"),),
    "building_materials": (
        ("抗壓強度", "≥42.5 MPa", "38.1 MPa"),
        ("放射性", "內照射指數≤1.0", "1.4"),
    ),
    "textiles_apparel": (
        ("纖維含量", "與標識一致", "滌綸含量偏差 12%"),
        ("甲醛含量", "≤75 mg/kg", "132 mg/kg"),
    ),
    "household_appliances": (("接地措施", "應符合 GB 4706.1", "接地電阻 0.32 Ω"),),
    "vehicles_parts": (("耐磨性", "應符合 GB 5763", "磨損率超標"),),
    "metallurgy": (("屈服強度", "≥400 MPa", "372 MPa"),),
    "furniture": (("甲醛釋放量", "≤1.5 mg/L", "3.2 mg/L"),),
    "agricultural_inputs": (("總養分", "≥40%", "33.6%"),),
    "light_industry": (("標識", "應標明執行標準", "未標明"),),
    "food_related": (("高錳酸鉀消耗量", "≤10 mg/kg", "18 mg/kg"),),
}

ADVANCED_STANDARDS = {
    "machinery_safety": ("ISO 10262", "EN 474-1", "ISO 20474-1"),
    "electrical_materials": ("IEC 60502-1", "IEC 60439-1", "IEC 60076-1"),
    "electronics": ("IEC 60598-1", "IEC 61000-3-2"),
    "chemical_products": ("ASTM D1755", "ISO 1264"),
    "building_materials": ("EN 197-1", "ASTM C150", "ISO 13006"),
    "textiles_apparel": ("ISO 6330", "ASTM D5034"),
    "food": ("CAC/RCP 1-1969", "Codex STAN 192-1995"),
    "household_appliances": ("IEC 60335-1", "IEC 60335-2-21"),
    "vehicles_parts": ("SAE J2530", "ECE R90"),
    "metallurgy": ("BS 4449", "ASTM A615"),
    "furniture": ("EN 717-1", "BIFMA X5.1"),
    "agricultural_inputs": ("ISO 8157",),
    "light_industry": ("ISO 9001",),
    "food_related": ("EN 1186",),
}
