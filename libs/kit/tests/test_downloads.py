from urllib.parse import unquote

from kit.downloads import content_disposition


def test_a_chinese_name_arrives_intact_beside_an_ascii_fallback() -> None:
    header = content_disposition('抽查結果公告-2024"GJ.pdf')
    fallback, encoded = header.split("; filename*=UTF-8''")
    assert fallback == 'attachment; filename="______-2024_GJ.pdf"'
    assert unquote(encoded) == '抽查結果公告-2024"GJ.pdf'
