"""A unit of work's writes composed into one statement: each part keeps its own parameters."""

import pytest

from porting_runtime.statement import Writes, one_statement


def test_each_parts_parameters_are_numbered_after_the_parts_before_it():
    sql, arguments = one_statement([
        Writes("a AS (INSERT INTO x SELECT * FROM unnest($1::int[], $2::text[]))", [[1], ["one"]]),
        Writes("b AS (DELETE FROM y WHERE id = ANY($1::int[]) AND z = $2)", [[7], "z"], result="pg_notify($2, '')"),
        Writes("c AS (INSERT INTO w VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9), ($10))", [*range(10)],
               result="(SELECT 1 FROM c WHERE $1 > 0)"),
    ])

    assert sql == ("WITH a AS (INSERT INTO x SELECT * FROM unnest($1::int[], $2::text[])),\n"
                   "b AS (DELETE FROM y WHERE id = ANY($3::int[]) AND z = $4),\n"
                   "c AS (INSERT INTO w VALUES ($5, $6, $7, $8, $9, $10, $11, $12, $13), ($14))\n"
                   "SELECT pg_notify($4, ''), (SELECT 1 FROM c WHERE $5 > 0)")
    assert arguments == [[1], ["one"], [7], "z", *range(10)]


def test_parts_without_a_result_still_make_a_complete_statement():
    sql, arguments = one_statement([Writes("a AS (DELETE FROM x WHERE id = $1)", [3])])

    assert sql == "WITH a AS (DELETE FROM x WHERE id = $1)\nSELECT NULL"
    assert arguments == [3]


@pytest.mark.parametrize("arguments", [[1], [1, 2, 3]])
def test_a_part_whose_parameters_and_arguments_disagree_is_refused_rather_than_bound_to_the_next_part(arguments):
    with pytest.raises(ValueError, match="parameters"):
        one_statement([Writes("a AS (INSERT INTO x VALUES ($1, $2))", arguments), Writes("b AS (DELETE FROM y)", [])])


def test_two_parts_naming_a_cte_alike_are_refused():
    with pytest.raises(ValueError, match="(?i)'written'"):
        one_statement([Writes("written AS (INSERT INTO x VALUES ($1))", [1]),
                       Writes("other AS (DELETE FROM z),\nWRITTEN AS (DELETE FROM y)", [])])
