"""Dialects: exact strings per preset, checked against the forms in docs/dialects.md."""

from __future__ import annotations

import pytest

from emailexport.dialects import (
    PRESETS,
    UNCONFIRMED,
    DialectError,
    UnsupportedRuleError,
    attribute_name,
    conditional_syntax,
    escape_text,
    tag_syntax,
)
from emailexport.errors import RenderError
from emailexport.models.workspace import Branch, BranchRule, TemplateEnginePreset


def rule_branch(key: str, field: str, operator: str, value: object = None) -> Branch:
    return Branch(key=key, rule=BranchRule(field=field, operator=operator, value=value))  # type: ignore[arg-type]


THREE_BRANCHES = [
    rule_branch("gold", "tier", "equals", "gold"),
    rule_branch("silver", "tier", "equals", "silver"),
    Branch(key="other"),
]


def test_presets_match_the_model_literal() -> None:
    assert set(PRESETS) == set(TemplateEnginePreset.__args__)  # type: ignore[attr-defined]
    assert len(PRESETS) == 12
    assert set(UNCONFIRMED) == set(PRESETS)


def test_errors_are_render_errors() -> None:
    assert issubclass(UnsupportedRuleError, DialectError)
    assert issubclass(DialectError, RenderError)


@pytest.mark.parametrize(
    ("preset", "with_fallback", "without_fallback"),
    [
        ("braze", "{{ ${first_name} | default: 'there' }}", "{{ ${first_name} }}"),
        ("klaviyo", "{{ first_name|default:'there' }}", "{{ first_name }}"),
        ("customerio", '{{ customer.first_name | default: "there" }}', "{{ customer.first_name }}"),
        ("brevo", "{{ contact.FIRSTNAME|default:'there' }}", "{{ contact.FIRSTNAME }}"),
        ("mailchimp", "*|IF:FNAME|**|FNAME|**|ELSE:|*there*|END:IF|*", "*|FNAME|*"),
        (
            "ampscript",
            '%%=IIf(Empty(AttributeValue("FirstName")),"there",AttributeValue("FirstName"))=%%',
            '%%=AttributeValue("FirstName")=%%',
        ),
        ("sendgrid", '{{insert first_name "default=there"}}', "{{first_name}}"),
        ("iterable", '{{defaultIfEmpty firstName "there"}}', "{{firstName}}"),
        ("hubspot", '{{ personalization_token("contact.firstname", "there") }}', "{{ contact.firstname }}"),
        ("marketo", "{{lead.First Name:default=there}}", "{{lead.First Name}}"),
        ("campaign_monitor", "[firstname,fallback=there]", "[firstname]"),
        ("mailjet", '{{data:firstname:"there"}}', '{{data:firstname:""}}'),
    ],
)
def test_tag_with_and_without_fallback(preset: str, with_fallback: str, without_fallback: str) -> None:
    assert tag_syntax(preset, "first_name", "there") == with_fallback
    assert tag_syntax(preset, "first_name", "") == without_fallback


@pytest.mark.parametrize(
    ("preset", "tag"),
    [
        ("braze", "{{ custom_attribute.${tier} | default: 'none' }}"),
        ("klaviyo", "{{ person|lookup:'tier'|default:'none' }}"),
        ("iterable", '{{defaultIfEmpty loyaltyTier "none"}}'),
    ],
)
def test_custom_attribute_tags(preset: str, tag: str) -> None:
    key = "loyalty_tier" if preset == "iterable" else "tier"
    assert tag_syntax(preset, key, "none") == tag


@pytest.mark.parametrize(
    ("preset", "single", "double"),
    [
        ("braze", '{{ ${first_name} | default: "it\'s you" }}', "{{ ${first_name} | default: 'say \"hi\"' }}"),
        ("klaviyo", '{{ first_name|default:"it\'s you" }}', "{{ first_name|default:'say \"hi\"' }}"),
        (
            "customerio",
            '{{ customer.first_name | default: "it\'s you" }}',
            "{{ customer.first_name | default: 'say \"hi\"' }}",
        ),
        ("brevo", '{{ contact.FIRSTNAME|default:"it\'s you" }}', "{{ contact.FIRSTNAME|default:'say \"hi\"' }}"),
        (
            "mailchimp",
            "*|IF:FNAME|**|FNAME|**|ELSE:|*it's you*|END:IF|*",
            '*|IF:FNAME|**|FNAME|**|ELSE:|*say "hi"*|END:IF|*',
        ),
        (
            "ampscript",
            '%%=IIf(Empty(AttributeValue("FirstName")),"it\'s you",AttributeValue("FirstName"))=%%',
            '%%=IIf(Empty(AttributeValue("FirstName")),"say ""hi""",AttributeValue("FirstName"))=%%',
        ),
        ("sendgrid", '{{insert first_name "default=it\'s you"}}', "{{insert first_name 'default=say \"hi\"'}}"),
        ("iterable", '{{defaultIfEmpty firstName "it\'s you"}}', "{{defaultIfEmpty firstName 'say \"hi\"'}}"),
        (
            "hubspot",
            '{{ personalization_token("contact.firstname", "it\'s you") }}',
            '{{ personalization_token("contact.firstname", \'say "hi"\') }}',
        ),
        ("marketo", "{{lead.First Name:default=it's you}}", '{{lead.First Name:default=say "hi"}}'),
        ("campaign_monitor", "[firstname,fallback=it's you]", '[firstname,fallback=say "hi"]'),
        ("mailjet", '{{data:firstname:"it\'s you"}}', "{{data:firstname:'say \"hi\"'}}"),
    ],
)
def test_fallback_with_quotes(preset: str, single: str, double: str) -> None:
    assert tag_syntax(preset, "first_name", "it's you") == single
    assert tag_syntax(preset, "first_name", 'say "hi"') == double


@pytest.mark.parametrize(
    "preset", ["braze", "klaviyo", "customerio", "brevo", "sendgrid", "iterable", "hubspot", "mailjet"]
)
def test_fallback_with_both_quotes_is_an_error_without_escapes(preset: str) -> None:
    with pytest.raises(DialectError, match="both"):
        tag_syntax(preset, "first_name", 'it\'s "x"')


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("ampscript", '%%=IIf(Empty(AttributeValue("FirstName")),"it\'s ""x""",AttributeValue("FirstName"))=%%'),
        ("mailchimp", '*|IF:FNAME|**|FNAME|**|ELSE:|*it\'s "x"*|END:IF|*'),
        ("marketo", '{{lead.First Name:default=it\'s "x"}}'),
    ],
)
def test_fallback_with_both_quotes_where_the_syntax_allows_it(preset: str, expected: str) -> None:
    assert tag_syntax(preset, "first_name", 'it\'s "x"') == expected


@pytest.mark.parametrize(
    ("preset", "fallback"),
    [("mailchimp", "a *|b"), ("campaign_monitor", "a]b"), ("marketo", "a}}b")],
)
def test_fallback_with_the_tag_delimiter_is_an_error(preset: str, fallback: str) -> None:
    with pytest.raises(DialectError):
        tag_syntax(preset, "first_name", fallback)


def test_marketo_email_designer_tag() -> None:
    settings = {"editor": "email_designer"}
    assert tag_syntax("marketo", "first_name", "there", settings=settings) == '{%=lead.firstName ?: "there" %}'
    assert tag_syntax("marketo", "first_name", "", settings=settings) == "{{lead.firstName}}"
    with pytest.raises(DialectError, match="editor"):
        tag_syntax("marketo", "first_name", "there", settings={"editor": "nope"})


def test_mailjet_send_variables() -> None:
    assert tag_syntax("mailjet", "first_name", "there", settings={"namespace": "var"}) == '{{var:firstname:"there"}}'


@pytest.mark.parametrize(
    ("preset", "gold", "silver", "other", "closing"),
    [
        (
            "braze",
            "{% if {{custom_attribute.${tier}}} == 'gold' %}",
            "{% elsif {{custom_attribute.${tier}}} == 'silver' %}",
            "{% else %}",
            "{% endif %}",
        ),
        (
            "klaviyo",
            "{% if person|lookup:'tier' == 'gold' %}",
            "{% elif person|lookup:'tier' == 'silver' %}",
            "{% else %}",
            "{% endif %}",
        ),
        (
            "customerio",
            '{% if customer.tier == "gold" %}',
            '{% elsif customer.tier == "silver" %}',
            "{% else %}",
            "{% endif %}",
        ),
        (
            "brevo",
            "{% if contact.TIER == 'gold' %}",
            "{% elif contact.TIER == 'silver' %}",
            "{% else %}",
            "{% endif %}",
        ),
        ("mailchimp", "*|IF:TIER=gold|*", "*|ELSEIF:TIER=silver|*", "*|ELSE:|*", "*|END:IF|*"),
        (
            "ampscript",
            '%%[ IF AttributeValue("Tier") == "gold" THEN ]%%',
            '%%[ ELSEIF AttributeValue("Tier") == "silver" THEN ]%%',
            "%%[ ELSE ]%%",
            "%%[ ENDIF ]%%",
        ),
        (
            "sendgrid",
            '{{#equals tier "gold"}}',
            '{{else}}{{#equals tier "silver"}}',
            "{{else}}",
            "{{/equals}}{{/equals}}",
        ),
        ("iterable", '{{#ifEq tier "gold"}}', '{{else}}{{#ifEq tier "silver"}}', "{{else}}", "{{/ifEq}}{{/ifEq}}"),
        (
            "hubspot",
            '{% if contact.tier == "gold" %}',
            '{% elif contact.tier == "silver" %}',
            "{% else %}",
            "{% endif %}",
        ),
        ("marketo", '#if(${lead.Tier} == "gold")', '#elseif(${lead.Tier} == "silver")', "#{else}", "#{end}"),
        ("campaign_monitor", "[if:tier=gold]", "[elseif:tier=silver]", "[else]", "[endif]"),
        (
            "mailjet",
            '{% if data:tier:"" == "gold" %}',
            '{% elseif data:tier:"" == "silver" %}',
            "{% else %}",
            "{% endif %}",
        ),
    ],
)
def test_three_branch_conditional(preset: str, gold: str, silver: str, other: str, closing: str) -> None:
    syntax = conditional_syntax(preset, THREE_BRANCHES)
    assert syntax.branch_values == {"gold": gold, "silver": silver, "other": other}
    assert syntax.closing == closing


OPERATOR_CASES = [
    ("braze", "equals", "{% if {{custom_attribute.${tier}}} == 'gold' %}", "{% endif %}"),
    ("braze", "not_equals", "{% if {{custom_attribute.${tier}}} != 'gold' %}", "{% endif %}"),
    ("braze", "contains", "{% if {{custom_attribute.${tier}}} contains 'gold' %}", "{% endif %}"),
    ("braze", "is_set", "{% if {{custom_attribute.${tier}}} != blank %}", "{% endif %}"),
    ("braze", "is_not_set", "{% if {{custom_attribute.${tier}}} == blank %}", "{% endif %}"),
    ("braze", "greater_than", "{% if {{custom_attribute.${score}}} > 10 %}", "{% endif %}"),
    ("braze", "less_than", "{% if {{custom_attribute.${score}}} < 2.5 %}", "{% endif %}"),
    ("klaviyo", "equals", "{% if person|lookup:'tier' == 'gold' %}", "{% endif %}"),
    ("klaviyo", "not_equals", "{% if person|lookup:'tier' != 'gold' %}", "{% endif %}"),
    ("klaviyo", "contains", "{% if 'gold' in person|lookup:'tier' %}", "{% endif %}"),
    ("klaviyo", "is_set", "{% if person|lookup:'tier' %}", "{% endif %}"),
    ("klaviyo", "is_not_set", "{% if not person|lookup:'tier' %}", "{% endif %}"),
    ("klaviyo", "greater_than", "{% if person|lookup:'score' > 10 %}", "{% endif %}"),
    ("klaviyo", "less_than", "{% if person|lookup:'score' < 2.5 %}", "{% endif %}"),
    ("customerio", "equals", '{% if customer.tier == "gold" %}', "{% endif %}"),
    ("customerio", "not_equals", '{% if customer.tier != "gold" %}', "{% endif %}"),
    ("customerio", "contains", '{% if customer.tier contains "gold" %}', "{% endif %}"),
    ("customerio", "is_set", "{% if customer.tier != blank %}", "{% endif %}"),
    ("customerio", "is_not_set", "{% if customer.tier == blank %}", "{% endif %}"),
    ("customerio", "greater_than", "{% if customer.score > 10 %}", "{% endif %}"),
    ("customerio", "less_than", "{% if customer.score < 2.5 %}", "{% endif %}"),
    ("brevo", "equals", "{% if contact.TIER == 'gold' %}", "{% endif %}"),
    ("brevo", "not_equals", "{% if contact.TIER != 'gold' %}", "{% endif %}"),
    ("brevo", "contains", "{% if 'gold' in contact.TIER %}", "{% endif %}"),
    ("brevo", "is_set", "{% if contact.TIER %}", "{% endif %}"),
    ("brevo", "is_not_set", "{% if not contact.TIER %}", "{% endif %}"),
    ("brevo", "greater_than", "{% if contact.SCORE > 10 %}", "{% endif %}"),
    ("brevo", "less_than", "{% if contact.SCORE < 2.5 %}", "{% endif %}"),
    ("mailchimp", "equals", "*|IF:TIER=gold|*", "*|END:IF|*"),
    ("mailchimp", "not_equals", "*|IF:TIER!=gold|*", "*|END:IF|*"),
    ("mailchimp", "contains", None, None),
    ("mailchimp", "is_set", "*|IF:TIER|*", "*|END:IF|*"),
    ("mailchimp", "is_not_set", "*|IFNOT:TIER|*", "*|END:IF|*"),
    ("mailchimp", "greater_than", "*|IF:SCORE>10|*", "*|END:IF|*"),
    ("mailchimp", "less_than", "*|IF:SCORE<2.5|*", "*|END:IF|*"),
    ("ampscript", "equals", '%%[ IF AttributeValue("Tier") == "gold" THEN ]%%', "%%[ ENDIF ]%%"),
    ("ampscript", "not_equals", '%%[ IF AttributeValue("Tier") != "gold" THEN ]%%', "%%[ ENDIF ]%%"),
    ("ampscript", "contains", '%%[ IF IndexOf(AttributeValue("Tier"),"gold") > 0 THEN ]%%', "%%[ ENDIF ]%%"),
    ("ampscript", "is_set", '%%[ IF NOT Empty(AttributeValue("Tier")) THEN ]%%', "%%[ ENDIF ]%%"),
    ("ampscript", "is_not_set", '%%[ IF Empty(AttributeValue("Tier")) THEN ]%%', "%%[ ENDIF ]%%"),
    ("ampscript", "greater_than", '%%[ IF AttributeValue("Score") > 10 THEN ]%%', "%%[ ENDIF ]%%"),
    ("ampscript", "less_than", '%%[ IF AttributeValue("Score") < 2.5 THEN ]%%', "%%[ ENDIF ]%%"),
    ("sendgrid", "equals", '{{#equals tier "gold"}}', "{{/equals}}"),
    ("sendgrid", "not_equals", '{{#notEquals tier "gold"}}', "{{/notEquals}}"),
    ("sendgrid", "contains", None, None),
    ("sendgrid", "is_set", "{{#if tier}}", "{{/if}}"),
    ("sendgrid", "is_not_set", "{{#unless tier}}", "{{/unless}}"),
    ("sendgrid", "greater_than", "{{#greaterThan score 10}}", "{{/greaterThan}}"),
    ("sendgrid", "less_than", "{{#lessThan score 2.5}}", "{{/lessThan}}"),
    ("iterable", "equals", '{{#ifEq tier "gold"}}', "{{/ifEq}}"),
    ("iterable", "not_equals", '{{#ifEq tier "gold"}}{{else}}', "{{/ifEq}}"),
    ("iterable", "contains", '{{#ifContainsStr tier "gold"}}', "{{/ifContainsStr}}"),
    ("iterable", "is_set", "{{#if tier}}", "{{/if}}"),
    ("iterable", "is_not_set", "{{#unless tier}}", "{{/unless}}"),
    ("iterable", "greater_than", "{{#ifGt score 10}}", "{{/ifGt}}"),
    ("iterable", "less_than", "{{#ifLt score 2.5}}", "{{/ifLt}}"),
    ("hubspot", "equals", '{% if contact.tier == "gold" %}', "{% endif %}"),
    ("hubspot", "not_equals", '{% if contact.tier != "gold" %}', "{% endif %}"),
    ("hubspot", "contains", '{% if contact.tier is string_containing "gold" %}', "{% endif %}"),
    ("hubspot", "is_set", "{% if contact.tier %}", "{% endif %}"),
    ("hubspot", "is_not_set", "{% if not contact.tier %}", "{% endif %}"),
    ("hubspot", "greater_than", "{% if contact.score > 10 %}", "{% endif %}"),
    ("hubspot", "less_than", "{% if contact.score < 2.5 %}", "{% endif %}"),
    ("marketo", "equals", '#if(${lead.Tier} == "gold")', "#{end}"),
    ("marketo", "not_equals", '#if(${lead.Tier} != "gold")', "#{end}"),
    ("marketo", "contains", '#if($lead.Tier.contains("gold"))', "#{end}"),
    ("marketo", "is_set", '#if("$!{lead.Tier}" != "")', "#{end}"),
    ("marketo", "is_not_set", '#if("$!{lead.Tier}" == "")', "#{end}"),
    ("marketo", "greater_than", "#if($math.toNumber(${lead.Score}) > 10)", "#{end}"),
    ("marketo", "less_than", "#if($math.toNumber(${lead.Score}) < 2.5)", "#{end}"),
    ("campaign_monitor", "equals", "[if:tier=gold]", "[endif]"),
    ("campaign_monitor", "not_equals", None, None),
    ("campaign_monitor", "contains", None, None),
    ("campaign_monitor", "is_set", None, None),
    ("campaign_monitor", "is_not_set", None, None),
    ("campaign_monitor", "greater_than", None, None),
    ("campaign_monitor", "less_than", None, None),
    ("mailjet", "equals", '{% if data:tier:"" == "gold" %}', "{% endif %}"),
    ("mailjet", "not_equals", '{% if data:tier:"" != "gold" %}', "{% endif %}"),
    ("mailjet", "contains", None, None),
    ("mailjet", "is_set", '{% if data:tier:"" != "" %}', "{% endif %}"),
    ("mailjet", "is_not_set", '{% if data:tier:"" == "" %}', "{% endif %}"),
    ("mailjet", "greater_than", '{% if data:score:"" > 10 %}', "{% endif %}"),
    ("mailjet", "less_than", '{% if data:score:"" < 2.5 %}', "{% endif %}"),
]
OPERATOR_FIELDS = {"greater_than": ("score", 10), "less_than": ("score", 2.5), "is_set": ("tier", None)}


@pytest.mark.parametrize(("preset", "operator", "opening", "closing"), OPERATOR_CASES)
def test_each_operator(preset: str, operator: str, opening: str | None, closing: str | None) -> None:
    field, value = OPERATOR_FIELDS.get(operator, ("tier", None if operator == "is_not_set" else "gold"))
    branches = [rule_branch("a", field, operator, value)]
    if opening is None:
        with pytest.raises(UnsupportedRuleError) as caught:
            conditional_syntax(preset, branches)
        message = str(caught.value)
        assert preset in message and "'a'" in message and operator in message
        return
    syntax = conditional_syntax(preset, branches)
    assert syntax.branch_values == {"a": opening}
    assert syntax.closing == closing


def test_every_preset_and_operator_is_covered() -> None:
    covered = {(p, o) for p, o, _, _ in OPERATOR_CASES}
    operators = BranchRule.model_fields["operator"].annotation.__args__  # type: ignore[union-attr]
    assert covered == {(p, o) for p in PRESETS for o in operators}


@pytest.mark.parametrize(
    ("preset", "value", "expected"),
    [
        ("braze", True, "{% if {{custom_attribute.${vip}}} == true %}"),
        ("klaviyo", False, "{% if person|lookup:'vip' == False %}"),
        ("customerio", 3, "{% if customer.vip == 3 %}"),
        ("ampscript", 'a "b"', '%%[ IF AttributeValue("Vip") == "a ""b""" THEN ]%%'),
        ("iterable", 7, "{{#ifEq vip 7}}"),
        ("marketo", "$5 off", "#if(${lead.Vip} == '$5 off')"),
    ],
)
def test_value_literals(preset: str, value: object, expected: str) -> None:
    syntax = conditional_syntax(preset, [rule_branch("a", "vip", "equals", value)])
    assert syntax.branch_values["a"] == expected


def test_value_with_both_quotes_is_an_error_in_liquid() -> None:
    with pytest.raises(DialectError, match="both"):
        conditional_syntax("customerio", [rule_branch("a", "tier", "equals", 'it\'s "x"')])


def test_greater_than_needs_a_number() -> None:
    assert conditional_syntax("hubspot", [rule_branch("a", "score", "greater_than", "10")]).branch_values == {
        "a": "{% if contact.score > 10 %}"
    }
    with pytest.raises(DialectError, match="number"):
        conditional_syntax("hubspot", [rule_branch("a", "score", "greater_than", "ten")])


def test_iterable_not_equals_with_a_following_branch_is_refused() -> None:
    branches = [rule_branch("a", "tier", "not_equals", "gold"), Branch(key="b")]
    with pytest.raises(UnsupportedRuleError, match=r"iterable.*not_equals.*'a'"):
        conditional_syntax("iterable", branches)


def test_iterable_not_equals_as_last_nested_branch() -> None:
    branches = [rule_branch("a", "tier", "equals", "gold"), rule_branch("b", "tier", "not_equals", "silver")]
    syntax = conditional_syntax("iterable", branches)
    assert syntax.branch_values == {"a": '{{#ifEq tier "gold"}}', "b": '{{else}}{{#ifEq tier "silver"}}{{else}}'}
    assert syntax.closing == "{{/ifEq}}{{/ifEq}}"


def test_iterable_mixed_helpers_close_innermost_first() -> None:
    branches = [
        rule_branch("a", "score", "greater_than", 100),
        rule_branch("b", "tier", "contains", "gold"),
        rule_branch("c", "tier", "is_set"),
        Branch(key="d"),
    ]
    syntax = conditional_syntax("iterable", branches)
    assert syntax.branch_values == {
        "a": "{{#ifGt score 100}}",
        "b": '{{else}}{{#ifContainsStr tier "gold"}}',
        "c": "{{else}}{{#if tier}}",
        "d": "{{else}}",
    }
    assert syntax.closing == "{{/if}}{{/ifContainsStr}}{{/ifGt}}"


def test_mailchimp_ifnot_only_first() -> None:
    first = conditional_syntax("mailchimp", [rule_branch("a", "tier", "is_not_set"), Branch(key="b")])
    assert first.branch_values == {"a": "*|IFNOT:TIER|*", "b": "*|ELSE:|*"}
    with pytest.raises(UnsupportedRuleError, match=r"mailchimp.*is_not_set.*'b'"):
        conditional_syntax("mailchimp", [rule_branch("a", "tier", "is_set"), rule_branch("b", "tier", "is_not_set")])


def test_first_branch_needs_a_rule() -> None:
    with pytest.raises(DialectError, match="first branch"):
        conditional_syntax("braze", [Branch(key="a")])


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(DialectError, match="braze, klaviyo"):
        tag_syntax("nope", "first_name", "")
    with pytest.raises(DialectError, match="unknown"):
        conditional_syntax("nope", THREE_BRANCHES)


@pytest.mark.parametrize(
    ("preset", "key", "name"),
    [
        ("braze", "first_name", "${first_name}"),
        ("braze", "tier", "custom_attribute.${tier}"),
        ("klaviyo", "Tier", "Tier"),
        ("customerio", "first_name", "first_name"),
        ("brevo", "first_name", "FIRSTNAME"),
        ("brevo", "last_name", "LASTNAME"),
        ("brevo", "city", "CITY"),
        ("mailchimp", "first_name", "FNAME"),
        ("mailchimp", "last_name", "LNAME"),
        ("mailchimp", "company", "COMPANY"),
        ("ampscript", "first_name", "FirstName"),
        ("sendgrid", "first_name", "first_name"),
        ("iterable", "first_name", "firstName"),
        ("hubspot", "first_name", "firstname"),
        ("hubspot", "Tier", "tier"),
        ("marketo", "first_name", "First Name"),
        ("marketo", "email", "Email Address"),
        ("campaign_monitor", "first_name", "firstname"),
        ("campaign_monitor", "last_name", "lastname"),
        ("campaign_monitor", "email_address", "email"),  # Campaign Monitor's Email address field is [email]
        ("campaign_monitor", "name", "fullname"),  # its Name field is [fullname] (and [firstname], [lastname])
        ("campaign_monitor", "subscription date", "subscriptiondate"),  # spaces removed, as Campaign Monitor does
        ("mailjet", "first_name", "firstname"),
    ],
)
def test_attribute_name_conventions(preset: str, key: str, name: str) -> None:
    assert attribute_name(preset, key) == name


@pytest.mark.parametrize("preset", PRESETS)
def test_attribute_name_override_wins(preset: str) -> None:
    overrides = {preset: "Given_Name", "other": "ignored"}
    assert attribute_name(preset, "first_name", overrides) == "Given_Name"
    assert "Given_Name" in tag_syntax(preset, "first_name", "there", attribute_names=overrides)
    branches = [rule_branch("a", "first_name", "equals", "Ann")]
    syntax = conditional_syntax(preset, branches, attribute_names={"first_name": overrides})
    assert "Given_Name" in syntax.branch_values["a"]


def test_marketo_override_is_the_display_name() -> None:
    overrides = {"first_name": {"marketo": "Preferred Name"}}
    syntax = conditional_syntax("marketo", [rule_branch("a", "first_name", "is_set")], attribute_names=overrides)
    assert syntax.branch_values["a"] == '#if("$!{lead.PreferredName}" != "")'
    designer = tag_syntax(
        "marketo", "first_name", "x", attribute_names=overrides["first_name"], settings={"editor": "email_designer"}
    )
    assert designer == '{%=lead.preferredName ?: "x" %}'


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("mailchimp", "*|MMERGE3|*"),
        ("ampscript", '%%=AttributeValue("First Name")=%%'),
        ("braze", "{{ ${first_name} }}"),
    ],
)
def test_override_exact_strings(preset: str, expected: str) -> None:
    overrides = {"mailchimp": "MMERGE3", "ampscript": "First Name"}
    assert tag_syntax(preset, "first_name", "", attribute_names=overrides) == expected


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_handles_both_functions(preset: str) -> None:
    assert tag_syntax(preset, "first_name", "there")
    syntax = conditional_syntax(preset, [rule_branch("a", "tier", "equals", "gold"), Branch(key="b")])
    assert set(syntax.branch_values) == {"a", "b"} and syntax.closing


def _liquid_render(source: str, data: dict[str, object]) -> str:
    liquid = pytest.importorskip("liquid")
    return str(liquid.Environment().from_string(source).render(**data))


@pytest.mark.parametrize(
    ("tier", "rendered"),
    [("gold", "G"), ("silver", "S"), ("bronze", "O"), (None, "O")],
)
def test_customerio_output_parses_and_runs_as_liquid(tier: str | None, rendered: str) -> None:
    syntax = conditional_syntax("customerio", THREE_BRANCHES)
    values = syntax.branch_values
    source = values["gold"] + "G" + values["silver"] + "S" + values["other"] + "O" + syntax.closing
    assert _liquid_render(source, {"customer": {"tier": tier}}) == rendered


@pytest.mark.parametrize(("operator", "value", "tier", "shown"), [
    ("contains", "ol", "gold", True),
    ("is_set", None, "", False),
    ("is_not_set", None, "", True),
    ("not_equals", "gold", "gold", False),
])  # fmt: skip
def test_customerio_operators_run_as_liquid(operator: str, value: str | None, tier: str, shown: bool) -> None:
    syntax = conditional_syntax("customerio", [rule_branch("a", "tier", operator, value)])
    source = syntax.branch_values["a"] + "yes" + syntax.closing
    assert _liquid_render(source, {"customer": {"tier": tier}}) == ("yes" if shown else "")


def test_customerio_tag_runs_as_liquid() -> None:
    source = tag_syntax("customerio", "first_name", "it's you")
    assert _liquid_render(source, {"customer": {}}) == "it's you"
    assert _liquid_render(source, {"customer": {"first_name": "Ann"}}) == "Ann"


def test_braze_output_parses_as_liquid_once_attributes_are_resolved() -> None:
    # Braze resolves ${...} references before Liquid runs; stand in a plain variable for them.
    syntax = conditional_syntax("braze", THREE_BRANCHES)
    values = syntax.branch_values
    source = values["gold"] + "G" + values["silver"] + "S" + values["other"] + "O" + syntax.closing
    source = source.replace("{{custom_attribute.${tier}}}", "tier")
    assert _liquid_render(source, {"tier": "silver"}) == "S"


@pytest.mark.parametrize(
    "text",
    ["Hi [firstname]!", "Sent to [EMAIL]", "[fullname] and [lastname]", "[if:tier=gold]", "a [endif] b",
     "[city,fallback=you]"],
)
def test_campaign_monitor_text_holding_its_tags_is_refused(text: str) -> None:
    # Campaign Monitor replaces these wherever they stand (the built-in Name and Email address tags need
    # no fallback) and has no way to write them literally.
    with pytest.raises(DialectError, match="campaign_monitor: the text"):
        escape_text("campaign_monitor", text)


@pytest.mark.parametrize("text", ["Footnote [1]", "[sic]", "Save [up to 30%]", "[firstname is not a tag"])
def test_campaign_monitor_other_brackets_stay_text(text: str) -> None:
    assert escape_text("campaign_monitor", text) == [(False, text)]
