"""A unit of work's writes composed into one statement: each part keeps its own parameters."""

from porting_runtime.statement import Writes, one_statement


def test_each_parts_parameters_are_numbered_after_the_parts_before_it():
    sql, arguments = one_statement([
        Writes("a AS (INSERT INTO x SELECT * FROM unnest($1::int[], $2::text[]))", [[1], ["one"]]),
        Writes("b AS (DELETE FROM y WHERE id = ANY($1::int[]) AND z = $2)", [[7], "z"], result="pg_notify($2, '')"),
        Writes("c AS (INSERT INTO w VALUES ($1), ($10))", [*range(10)], result="(SELECT 1 FROM c WHERE $1 > 0)"),
    ])

    assert sql == ("WITH a AS (INSERT INTO x SELECT * FROM unnest($1::int[], $2::text[])), "
                   "b AS (DELETE FROM y WHERE id = ANY($3::int[]) AND z = $4), "
                   "c AS (INSERT INTO w VALUES ($5), ($14))\n"
                   "SELECT pg_notify($4, ''), (SELECT 1 FROM c WHERE $5 > 0)")
    assert arguments == [[1], ["one"], [7], "z", *range(10)]


def test_parts_without_a_result_still_make_a_complete_statement():
    sql, arguments = one_statement([Writes("a AS (DELETE FROM x WHERE id = $1)", [3])])

    assert sql == "WITH a AS (DELETE FROM x WHERE id = $1)\nSELECT NULL"
    assert arguments == [3]
