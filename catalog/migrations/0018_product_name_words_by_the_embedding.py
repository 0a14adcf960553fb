from django.db import migrations

# Migration 0017's triggers wrote a product's new name words inside the writer's transaction:
# two writers adding each other's new words could deadlock, and a save waited for a long import
# that had added the same word to commit. The words are now recorded as products are embedded
# (``catalog.services.product_name_words_record``), a short transaction per batch, in order.
DROP_TRIGGERS = """
DROP TRIGGER product_name_words_on_update ON catalog_product;
DROP TRIGGER product_name_words_on_insert ON catalog_product;
DROP FUNCTION catalog_product_name_words_record();
"""

RECREATE_TRIGGERS = """
CREATE FUNCTION catalog_product_name_words_record() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO catalog_productnameword (word)
    SELECT DISTINCT word
    FROM written_products,
        regexp_split_to_table(lower(written_products.name), '\\s+') AS word
    WHERE word <> ''
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER product_name_words_on_insert AFTER INSERT ON catalog_product
    REFERENCING NEW TABLE AS written_products
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_product_name_words_record();
CREATE TRIGGER product_name_words_on_update AFTER UPDATE ON catalog_product
    REFERENCING NEW TABLE AS written_products
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_product_name_words_record();
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0017_product_name_words")]

    operations = [migrations.RunSQL(DROP_TRIGGERS, RECREATE_TRIGGERS)]
