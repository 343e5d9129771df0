"""DocQA's Streamlit web page (``docqa ui``): ask, read the cited document, label, manage."""
