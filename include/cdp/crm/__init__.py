"""Writing to the CRM: the warehouse-to-Salesforce contact push of migration phase 2."""
