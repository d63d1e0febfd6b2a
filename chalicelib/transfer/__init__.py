"""Import and export: contacts in bulk (POST /contacts/batch, POST /imports) and out (GET /exports).

Reading files (CSV, vCard, our JSON backup) into `records.Record`s, the bulk write engine that
commits many contacts and notes in few DynamoDB calls, and the export formats.
"""
