-- The modalities' short codes in the contract's order: a combination joins them with + in this order.
-- key: modality
CREATE TABLE modality_codes AS
SELECT modality, code, "position"
FROM seed_modality_codes
ORDER BY "position";

COMMENT ON TABLE modality_codes IS 'One row per treatment modality: its short code and its place in a combination (codes are joined by + in this order, e.g. BTX+PT+SN).';
COMMENT ON COLUMN modality_codes.modality IS 'Modality as in treatments.modality.';
COMMENT ON COLUMN modality_codes.code IS 'Short code: BTX, PT, SN, MY or OS.';
COMMENT ON COLUMN modality_codes."position" IS 'Order of the code within a combination, 1 first.';
